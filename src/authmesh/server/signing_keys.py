"""The signing keys as an operator sees them: listed with their state, rotated on demand."""

from __future__ import annotations

from authmesh.server import audit
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.keys import KeyInfo

__all__ = ["KeyInfo", "list_keys", "rotate_now"]


async def list_keys(ctx: ServerContext) -> list[KeyInfo]:
    """Every key, newest first, as stored now (another replica may have rotated)."""
    await ctx.keys.reload()
    return sorted(ctx.keys.describe(), key=lambda k: k.published_at, reverse=True)


async def rotate_now(ctx: ServerContext, *, info: RequestInfo | None = None) -> KeyInfo:
    """Publish a new key at once; it signs after the publish-ahead delay and the older
    keys retire then. Returns the new key."""
    key = await ctx.keys.rotate()
    async with ctx.db.transaction() as session:
        await audit.record(ctx, session, "key_rotate", info=info, kid=key.kid)
    return next(k for k in ctx.keys.describe() if k.kid == key.kid)
