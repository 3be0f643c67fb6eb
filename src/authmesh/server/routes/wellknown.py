"""Discovery (RFC 8414, OpenID Connect Discovery) and the JWKS (RFC 7517)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from authmesh.dpop import ALGORITHMS as DPOP_ALGORITHMS
from authmesh.jose import ASYMMETRIC_ALGORITHMS
from authmesh.server.oidc.authorization import PROMPTS
from authmesh.server.oidc.scopes import OIDC_SCOPES
from authmesh.server.routes.common import get_context
from authmesh.server.routes.oauth import GRANT_TYPES

__all__ = ["discovery_document", "router"]

router = APIRouter(tags=["discovery"])


def discovery_document(issuer: str, signing_alg: str) -> dict[str, Any]:
    """The metadata document for ``issuer``."""
    algs = [signing_alg] if signing_alg in ASYMMETRIC_ALGORITHMS else ["HS256"]
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "end_session_endpoint": f"{issuer}/logout",
        "revocation_feed_endpoint": f"{issuer}/revocations",
        "revocation_feed_stream_endpoint": f"{issuer}/revocations/stream",
        "grant_types_supported": list(GRANT_TYPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": sorted(PROMPTS),
        "scopes_supported": sorted({*OIDC_SCOPES}),
        "authorization_response_iss_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "claims_parameter_supported": False,
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "token_endpoint_auth_signing_alg_values_supported": algs,
        "id_token_signing_alg_values_supported": algs,
        "access_token_signing_alg_values_supported": algs,
        "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),
        "subject_types_supported": ["public"],
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "nbf",
            "jti",
            "client_id",
            "scope",
            "roles",
            "sid",
            "auth_time",
            "preferred_username",
            "name",
            "email",
            "email_verified",
            "nonce",
            "amr",
            "azp",
            "at_hash",
        ],
    }


@router.get("/.well-known/openid-configuration", summary="OpenID/OAuth discovery")
async def openid_configuration(request: Request) -> JSONResponse:
    """Where every endpoint is, which grants and algorithms are supported."""
    ctx = get_context(request)
    return JSONResponse(
        discovery_document(ctx.issuer.issuer, ctx.settings.signing_alg),
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/.well-known/oauth-authorization-server", summary="RFC 8414 metadata")
async def oauth_metadata(request: Request) -> JSONResponse:
    """The same document under its RFC 8414 name."""
    return await openid_configuration(request)


@router.get("/.well-known/jwks.json", summary="Public signing keys (JWKS)")
async def jwks(request: Request) -> JSONResponse:
    """Every key that verifies tokens now: public members only."""
    ctx = get_context(request)
    await ctx.keys.refresh_if_stale()
    return JSONResponse(
        ctx.keys.jwks(),
        headers={"Cache-Control": f"public, max-age={ctx.settings.jwks_max_age}"},
    )
