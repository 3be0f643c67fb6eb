"""``/oauth/token`` (RFC 6749), ``/oauth/revoke`` (RFC 7009), ``/oauth/introspect`` (RFC 7662)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from authmesh.jose import ACCESS_TOKEN_TYPES, TokenRejected, VerifyPolicy, verify_jwt
from authmesh.server import grants
from authmesh.server.bearer import check_live
from authmesh.server.clients import (
    authenticate_client,
    check_grant_type,
    parse_client_credentials,
)
from authmesh.server.core import AuthCore
from authmesh.server.errors import (
    InvalidClient,
    OAuthError,
    UnsupportedGrantType,
)
from authmesh.server.oidc.codes import authorization_code_grant
from authmesh.server.routes.common import (
    NO_STORE,
    Form,
    get_core,
    get_metrics,
    no_store_json,
    read_form,
    request_info,
)
from authmesh.server.secrets import hash_secret
from authmesh.store import sessions as session_store
from authmesh.store.models import ClientRow

__all__ = ["GRANT_TYPES", "router"]

#: The grants of the token endpoint, in the order discovery lists them.
GRANT_TYPES = ("authorization_code", "password", "refresh_token", "client_credentials")

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


async def _client(request: Request, core: AuthCore, form: Form) -> ClientRow:
    creds = parse_client_credentials(request.headers.get("authorization"), form.single)
    return await authenticate_client(core, creds)


@router.post("/oauth/token", openapi_extra=_FORM_BODY, summary="Token endpoint (RFC 6749)")
async def token(request: Request) -> Response:
    """Issue tokens for the password, refresh_token and client_credentials grants."""
    core = get_core(request)
    metrics = get_metrics(request)
    started = time.perf_counter()
    grant_type = "unknown"
    try:
        await core.guard.hit("token", request_info(request).client_ip)
        form = await read_form(request)
        grant_type = form.require("grant_type")
        if grant_type not in GRANT_TYPES:
            grant_type = "unsupported"
            raise UnsupportedGrantType(f"supported: {', '.join(GRANT_TYPES)}")
        creds = parse_client_credentials(request.headers.get("authorization"), form.single)
        # Sign with the key every replica considers active (another may have rotated).
        await core.keys.refresh_if_stale()
        client_ip = request.client.host if request.client else None
        audiences = form.all("audience") + form.all("resource")
        result: grants.TokenResponse
        # The password and refresh grants authenticate the client in their own
        # transaction (one transaction less per request); same checks, same order.
        if grant_type == "authorization_code":
            result = await authorization_code_grant(
                core,
                creds,
                code=form.get("code"),
                redirect_uri=form.get("redirect_uri"),
                code_verifier=form.get("code_verifier"),
                client_ip=client_ip,
            )
        elif grant_type == "password":
            result = await grants.password_grant(
                core,
                creds,
                username=form.get("username"),
                password=form.get("password"),
                scope=form.get("scope"),
                audiences=audiences,
                client_ip=client_ip,
            )
        elif grant_type == "refresh_token":
            result = await grants.refresh_grant(
                core,
                creds,
                refresh_token=form.get("refresh_token"),
                scope=form.get("scope"),
                client_ip=client_ip,
            )
        else:
            client = await authenticate_client(core, creds)
            check_grant_type(client, grant_type)
            result = await grants.client_credentials_grant(
                core, client, scope=form.get("scope"), audiences=audiences
            )
    except OAuthError as exc:
        metrics.token_requests.labels(grant_type, exc.error).inc()
        raise
    metrics.token_requests.labels(grant_type, "success").inc()
    metrics.token_latency.labels(grant_type).observe(time.perf_counter() - started)
    return no_store_json(result.to_json())


def _access_policy(core: AuthCore) -> VerifyPolicy:
    return VerifyPolicy(
        issuer=core.issuer.issuer,
        audience=None,
        types=ACCESS_TOKEN_TYPES,
        required_claims=frozenset({"iss", "sub", "exp", "iat", "jti", "client_id"}),
        leeway=core.settings.leeway,
    )


async def _verify_access(core: AuthCore, token: str) -> dict[str, Any] | None:
    """The claims of a valid, live access token of this issuer, else ``None``."""
    if token.count(".") != 2:
        return None
    await core.keys.refresh_if_stale()
    try:
        verified = verify_jwt(token, core.keys.published(), _access_policy(core), clock=core.clock)
    except TokenRejected:
        return None
    if await check_live(core, verified.claims) is None:
        return None
    return verified.claims


@router.post("/oauth/revoke", openapi_extra=_TOKEN_BODY, summary="Token revocation (RFC 7009)")
async def revoke(request: Request) -> Response:
    """Revoke a refresh token (ending its session) or an access token (by ``jti``).

    Answers 200 whether or not the token was valid (RFC 7009 §2.2).
    """
    core = get_core(request)
    form = await read_form(request)
    client = await _client(request, core, form)
    value = form.require("token")
    info = request_info(request, actor=client.client_id)
    now = core.now()
    cursors: list[int] = []
    async with core.db.transaction() as session:
        row = await session_store.get_refresh_token(session, hash_secret(value))
        sess = await session_store.get_session(session, row.session_id) if row else None
        if sess is not None and sess.client_id == client.client_id:
            if await session_store.end_session(session, sess.id, now=now, reason="revoked"):
                cursors = await core.revoke(session, "sid", [sess.id])
                await core.audit(
                    session,
                    "token_revoke",
                    info=info,
                    client_id=client.client_id,
                    token_type="refresh_token",
                    session_id=sess.id,
                )
    if row is None:
        claims = await _verify_access(core, value)
        # Only the client the token was issued to may revoke it.
        if claims is not None and claims.get("client_id") == client.client_id:
            async with core.db.transaction() as session:
                cursors = await core.revoke(session, "jti", [claims["jti"]])
                await core.audit(
                    session,
                    "token_revoke",
                    info=info,
                    client_id=client.client_id,
                    token_type="access_token",
                    jti=claims["jti"],
                )
    await core.announce(cursors)
    return Response(status_code=200, headers=NO_STORE)


@router.post(
    "/oauth/introspect", openapi_extra=_TOKEN_BODY, summary="Token introspection (RFC 7662)"
)
async def introspect(request: Request) -> JSONResponse:
    """Whether a token is active, and its claims, for an authenticated client."""
    core = get_core(request)
    form = await read_form(request)
    client = await _client(request, core, form)
    if client.secret_hash is None:
        # RFC 7662 §2.1 wants the caller authorized; a public client id proves
        # nothing (discovery advertises only client_secret_basic and _post here).
        raise InvalidClient("introspection needs a confidential client")
    value = form.require("token")
    claims = await _verify_access(core, value)
    if claims is not None:
        body: dict[str, Any] = {"active": True, "token_type": "Bearer", **claims}
        return no_store_json(body)
    now = core.now()
    async with core.db.transaction() as session:
        row = await session_store.get_refresh_token(session, hash_secret(value))
        sess = await session_store.get_session(session, row.session_id) if row else None
    if (
        row is not None
        and sess is not None
        and sess.client_id == client.client_id  # a refresh token is its client's business
        and row.used_at is None
        and row.expires_at > now
        and sess.ended_at is None
        and sess.expires_at > now
    ):
        return no_store_json(
            {
                "active": True,
                "token_type": "refresh_token",
                "client_id": sess.client_id,
                "sub": sess.user_id,
                "sid": sess.id,
                "scope": sess.scope,
                "exp": int(row.expires_at),
                "iat": int(row.created_at),
                "iss": core.issuer.issuer,
            }
        )
    return no_store_json({"active": False})
