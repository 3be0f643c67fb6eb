"""``/oauth/token`` (RFC 6749), ``/oauth/revoke`` (RFC 7009), ``/oauth/introspect`` (RFC 7662)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from authmesh.errors import InvalidDpopProof
from authmesh.server import grants, introspection
from authmesh.server.client_auth import (
    TOKEN_EXCHANGE,
    authenticate_client,
    check_dpop_requirement,
    check_grant_type,
    parse_client_credentials,
)
from authmesh.server.context import ServerContext
from authmesh.server.dpop_proofs import check_proof
from authmesh.server.errors import InvalidDpopProofError, OAuthError, UnsupportedGrantType
from authmesh.server.oidc.codes import authorization_code_grant
from authmesh.server.routes.common import (
    NO_STORE,
    Form,
    get_context,
    get_metrics,
    no_store_json,
    read_form,
    request_info,
)
from authmesh.server.token_exchange import ExchangedToken, exchange_token
from authmesh.server.token_revocation import revoke_token
from authmesh.store.models import ClientRow

__all__ = ["GRANT_TYPES", "router"]

#: The grants of the token endpoint, in the order discovery lists them.
TOKEN_PATH = "/oauth/token"
GRANT_TYPES = (
    "authorization_code",
    "password",
    "refresh_token",
    "client_credentials",
    TOKEN_EXCHANGE,
)

router = APIRouter(tags=["oauth"])

_FORM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "grant_type": {
                            "type": "string",
                            "enum": [
                                "authorization_code",
                                "password",
                                "refresh_token",
                                "client_credentials",
                            ],
                        },
                        "username": {"type": "string"},
                        "password": {"type": "string"},
                        "refresh_token": {"type": "string"},
                        "code": {"type": "string"},
                        "redirect_uri": {"type": "string"},
                        "code_verifier": {"type": "string"},
                        "scope": {"type": "string"},
                        "audience": {"type": "string"},
                        "client_id": {"type": "string"},
                        "client_secret": {"type": "string"},
                    },
                    "required": ["grant_type"],
                }
            }
        },
    }
}
_TOKEN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "token": {"type": "string"},
                        "token_type_hint": {"type": "string"},
                        "client_id": {"type": "string"},
                        "client_secret": {"type": "string"},
                    },
                    "required": ["token"],
                }
            }
        },
    }
}


async def _client(request: Request, ctx: ServerContext, form: Form) -> ClientRow:
    creds = parse_client_credentials(request.headers.get("authorization"), form.single)
    return await authenticate_client(ctx, creds)


async def _dpop_key(ctx: ServerContext, request: Request) -> str | None:
    """The thumbprint of the key the request's DPoP proof proves, or ``None`` without one.

    Raises:
        InvalidDpopProofError: a proof that fails, or more than one (RFC 9449 §4.3).
    """
    proofs = request.headers.getlist("dpop")
    if not proofs:
        return None
    if len(proofs) > 1:
        raise InvalidDpopProofError("send one DPoP header")
    try:
        proof = await check_proof(
            ctx, proofs[0], method="POST", url=f"{ctx.issuer.issuer}{TOKEN_PATH}"
        )
    except InvalidDpopProof as exc:
        raise InvalidDpopProofError(str(exc)) from None
    return proof.jkt


@router.post("/oauth/token", openapi_extra=_FORM_BODY, summary="Token endpoint (RFC 6749)")
async def token(request: Request) -> Response:
    """Issue tokens for the password, refresh_token and client_credentials grants."""
    ctx = get_context(request)
    metrics = get_metrics(request)
    started = time.perf_counter()
    grant_type = "unknown"
    try:
        form = await read_form(request)
        # Only a sign-in (the password grant) is counted in the limits every
        # process shares, in Redis; the other grants prove a token or a secret,
        # are counted by this process alone and never wait on Redis.
        signs_in = form.get("grant_type") == "password"
        await ctx.guard.hit("token", request_info(request).client_ip, signs_in=signs_in)
        grant_type = form.require("grant_type")
        if grant_type not in GRANT_TYPES:
            grant_type = "unsupported"
            raise UnsupportedGrantType(f"supported: {', '.join(GRANT_TYPES)}")
        creds = parse_client_credentials(request.headers.get("authorization"), form.single)
        dpop_jkt = await _dpop_key(ctx, request)
        # Sign with the key every replica considers active (another may have rotated).
        await ctx.keys.refresh_if_stale()
        client_ip = request.client.host if request.client else None
        audiences = form.all("audience") + form.all("resource")
        result: grants.TokenResponse | ExchangedToken
        # The password and refresh grants authenticate the client in their own
        # transaction (one transaction less per request); same checks, same order.
        if grant_type == "authorization_code":
            result = await authorization_code_grant(
                ctx,
                creds,
                code=form.get("code"),
                redirect_uri=form.get("redirect_uri"),
                code_verifier=form.get("code_verifier"),
                client_ip=client_ip,
                dpop_jkt=dpop_jkt,
            )
        elif grant_type == "password":
            result = await grants.password_grant(
                ctx,
                creds,
                username=form.get("username"),
                password=form.get("password"),
                scope=form.get("scope"),
                audiences=audiences,
                client_ip=client_ip,
                dpop_jkt=dpop_jkt,
            )
        elif grant_type == "refresh_token":
            result = await grants.refresh_grant(
                ctx,
                creds,
                refresh_token=form.get("refresh_token"),
                scope=form.get("scope"),
                client_ip=client_ip,
                dpop_jkt=dpop_jkt,
            )
        elif grant_type == TOKEN_EXCHANGE:
            grant_type = "token_exchange"  # the metric's label, not the URN
            client = await authenticate_client(ctx, creds)
            check_grant_type(client, TOKEN_EXCHANGE)
            check_dpop_requirement(client, dpop_jkt)
            result = await exchange_token(
                ctx,
                client,
                subject_token=form.get("subject_token"),
                subject_token_type=form.get("subject_token_type"),
                actor_token=form.get("actor_token"),
                requested_token_type=form.get("requested_token_type"),
                scope=form.get("scope"),
                audiences=audiences,
                info=request_info(request, actor=client.client_id),
                dpop_jkt=dpop_jkt,
            )
        else:
            client = await authenticate_client(ctx, creds)
            check_grant_type(client, grant_type)
            check_dpop_requirement(client, dpop_jkt)
            result = await grants.client_credentials_grant(
                ctx, client, scope=form.get("scope"), audiences=audiences, dpop_jkt=dpop_jkt
            )
    except OAuthError as exc:
        metrics.token_requests.labels(grant_type, exc.error).inc()
        raise
    metrics.token_requests.labels(grant_type, "success").inc()
    metrics.token_latency.labels(grant_type).observe(time.perf_counter() - started)
    return no_store_json(result.to_json())


@router.post("/oauth/revoke", openapi_extra=_TOKEN_BODY, summary="Token revocation (RFC 7009)")
async def revoke(request: Request) -> Response:
    """Revoke a refresh token (ending its session) or an access token (by ``jti``).

    Answers 200 whether or not the token was valid (RFC 7009 §2.2).
    """
    ctx = get_context(request)
    form = await read_form(request)
    client = await _client(request, ctx, form)
    token = form.require("token")
    await revoke_token(ctx, client, token, info=request_info(request, actor=client.client_id))
    return Response(status_code=200, headers=NO_STORE)


@router.post(
    "/oauth/introspect", openapi_extra=_TOKEN_BODY, summary="Token introspection (RFC 7662)"
)
async def introspect(request: Request) -> JSONResponse:
    """Whether a token is active, and its claims, for an authenticated client."""
    ctx = get_context(request)
    form = await read_form(request)
    client = await _client(request, ctx, form)
    introspection.authorize(client)
    return no_store_json(await introspection.introspect(ctx, client, form.require("token")))
