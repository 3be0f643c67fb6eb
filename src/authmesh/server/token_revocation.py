"""Token revocation (RFC 7009), free of HTTP: a client revokes a token it was issued."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.server import audit
from authmesh.server.bearer import live_access_claims
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.feed import publish
from authmesh.server.secrets import hash_secret
from authmesh.store import sessions as session_store
from authmesh.store.models import ClientRow

__all__ = ["revoke_token"]


async def revoke_token(
    ctx: ServerContext, client: ClientRow, token: str, *, info: RequestInfo | None = None
) -> None:
    """Revoke a refresh token (ending its session) or an access token (by ``jti``).

    Only the client the token was issued to may revoke it; anything else (an
    unknown, invalid or foreign token) is silently ignored (RFC 7009 §2.2).
    """
    now = ctx.now()
    cursors: list[int] = []
    async with ctx.db.transaction() as session:
        row = await session_store.get_refresh_token(session, hash_secret(token))
        sess = await session_store.get_session(session, row.session_id) if row else None
        if sess is not None and sess.client_id == client.client_id:
            if await session_store.end_session(session, sess.id, now=now, reason="revoked"):
                cursors = await publish.revoke(
                    ctx, session, "sid", [sess.id], reason="token_revocation"
                )
                await _record(ctx, session, client, info, "refresh_token", session_id=sess.id)
    if row is None:
        claims = await live_access_claims(ctx, token)
        if claims is not None and claims.get("client_id") == client.client_id:
            async with ctx.db.transaction() as session:
                cursors = await publish.revoke(
                    ctx, session, "jti", [claims["jti"]], reason="token_revocation"
                )
                await _record(ctx, session, client, info, "access_token", jti=claims["jti"])
    await publish.announce(ctx, cursors)


async def _record(
    ctx: ServerContext,
    session: AsyncSession,
    client: ClientRow,
    info: RequestInfo | None,
    token_type: str,
    **details: str,
) -> None:
    await audit.record(
        ctx,
        session,
        "token_revoke",
        info=info,
        client_id=client.client_id,
        token_type=token_type,
        **details,
    )
