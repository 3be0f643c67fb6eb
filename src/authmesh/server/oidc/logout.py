"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), free of HTTP."""

from __future__ import annotations

import json
from dataclasses import dataclass

from authmesh.jose import TokenRejected, VerifyPolicy, verify_jws
from authmesh.server.context import ServerContext
from authmesh.server.oidc.errors import LogoutRequestError
from authmesh.server.oidc.id_tokens import ID_TOKEN_TYPE
from authmesh.server.oidc.redirect_uris import redirect_uri_matches
from authmesh.store import clients as client_store

__all__ = ["LogoutRequest", "validate_logout_request"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LogoutRequest:
    """A checked logout request."""

    client_id: str | None
    #: The user the ``id_token_hint`` names; ``None`` without a hint.
    hinted_subject: str | None
    redirect_to: str | None
    state: str | None


def _hint_claims(ctx: ServerContext, id_token_hint: str) -> dict[str, object]:
    """The claims of an ID token this server signed; an expired one is still a fine hint."""
    policy = VerifyPolicy(issuer=ctx.issuer.issuer, types=frozenset({ID_TOKEN_TYPE}))
    try:
        verified = verify_jws(id_token_hint, ctx.keys.published(), policy)
        claims = json.loads(verified.payload)
    except (TokenRejected, ValueError):
        raise LogoutRequestError("the id_token_hint is not an ID token of this server") from None
    if not isinstance(claims, dict) or claims.get("iss") != ctx.issuer.issuer:
        raise LogoutRequestError("the id_token_hint is not an ID token of this server")
    return claims


async def validate_logout_request(
    ctx: ServerContext,
    *,
    id_token_hint: str | None,
    client_id: str | None,
    post_logout_redirect_uri: str | None,
    state: str | None,
) -> LogoutRequest:
    """Check the hint and that the return URI is registered for the client.

    Raises:
        LogoutRequestError: a bad hint, a client that differs from the hint's
            audience, or a return URI the client did not register.
    """
    subject = None
    if id_token_hint is not None:
        await ctx.keys.refresh_if_stale()
        claims = _hint_claims(ctx, id_token_hint)
        aud = claims.get("aud")
        hinted_client = aud if isinstance(aud, str) else None
        if client_id is not None and client_id != hinted_client:
            raise LogoutRequestError("client_id does not match the id_token_hint")
        client_id = hinted_client
        sub = claims.get("sub")
        subject = sub if isinstance(sub, str) else None
    redirect_to = None
    if post_logout_redirect_uri is not None:
        if client_id is None:
            raise LogoutRequestError(
                "post_logout_redirect_uri needs an id_token_hint or a client_id"
            )
        async with ctx.db.transaction() as session:
            client = await client_store.get_client(session, client_id)
        if client is None or not redirect_uri_matches(
            client.post_logout_redirect_uris, post_logout_redirect_uri
        ):
            raise LogoutRequestError("the post_logout_redirect_uri is not registered")
        redirect_to = post_logout_redirect_uri
    return LogoutRequest(
        client_id=client_id, hinted_subject=subject, redirect_to=redirect_to, state=state
    )
