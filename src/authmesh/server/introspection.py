"""Token introspection (RFC 7662), free of HTTP: is a token active, and what it says."""

from __future__ import annotations

from typing import Any

from authmesh.server.bearer import live_access_claims
from authmesh.server.context import ServerContext
from authmesh.server.errors import InvalidClient
from authmesh.server.secrets import hash_secret
from authmesh.store import sessions as session_store
from authmesh.store.models import ClientRow

__all__ = ["authorize", "introspect"]


def authorize(client: ClientRow) -> None:
    """Refuse a caller that may not introspect.

    Raises:
        InvalidClient: ``client`` is public.
    """
    if client.secret_hash is None:
        # RFC 7662 §2.1 wants the caller authorized; a public client id proves
        # nothing (discovery advertises only client_secret_basic and _post here).
        raise InvalidClient("introspection needs a confidential client")


async def introspect(ctx: ServerContext, client: ClientRow, token: str) -> dict[str, Any]:
    """The RFC 7662 §2.2 answer for ``token``: ``{"active": false}`` unless it is live.

    An access token's answer carries its claims; a refresh token's, its
    session's, and only for the client it was issued to.

    Raises:
        InvalidClient: ``client`` is public (see :func:`authorize`).
    """
    authorize(client)
    claims = await live_access_claims(ctx, token)
    if claims is not None:
        return {"active": True, "token_type": "Bearer", **claims}
    now = ctx.now()
    async with ctx.db.transaction() as session:
        row = await session_store.get_refresh_token(session, hash_secret(token))
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
        return {
            "active": True,
            "token_type": "refresh_token",
            "client_id": sess.client_id,
            "sub": sess.user_id,
            "sid": sess.id,
            "scope": sess.scope,
            "exp": int(row.expires_at),
            "iat": int(row.created_at),
            "iss": ctx.issuer.issuer,
        }
    return {"active": False}
