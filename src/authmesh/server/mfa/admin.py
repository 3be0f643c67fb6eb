"""Operators and a user's factors: see them, and reset them (audited)."""

from __future__ import annotations

from collections.abc import Sequence

from authmesh.server import audit
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.errors import NotFound
from authmesh.server.feed import publish
from authmesh.server.mfa.factors import Factors, list_factors
from authmesh.store import factors as factor_store
from authmesh.store import sessions as session_store
from authmesh.store import users as user_store

__all__ = ["mfa_enabled_users", "reset_user_factors", "user_factors"]


async def _user_id(ctx: ServerContext, username: str) -> tuple[str, str]:
    async with ctx.db.transaction() as session:
        user = await user_store.get_user(session, username)
    if user is None:
        raise NotFound(f"no user {username[:150]!r}")
    return user.id, user.username


async def mfa_enabled_users(ctx: ServerContext, user_ids: Sequence[str]) -> set[str]:
    """Which of these users (ids) sign in with a second factor: for the console's user list."""
    async with ctx.db.transaction() as session:
        return await factor_store.users_with_factors(session, user_ids)


async def user_factors(ctx: ServerContext, username: str) -> Factors:
    """A user's factors and recovery codes left, for the admin API and console.

    Raises:
        NotFound: no such user.
    """
    user_id, _ = await _user_id(ctx, username)
    return await list_factors(ctx, user_id)


async def reset_user_factors(
    ctx: ServerContext, username: str, *, info: RequestInfo | None = None
) -> int:
    """Remove every factor and recovery code of a user (they lost their devices); every
    session of the user ends and every token is revoked. Returns the factors removed.

    Raises:
        NotFound: no such user.
    """
    user_id, name = await _user_id(ctx, username)
    async with ctx.db.transaction() as session:
        removed = await factor_store.delete_user_factors(session, user_id)
        sids = await session_store.end_user_sessions(
            session, user_id, now=ctx.now(), reason="mfa_reset"
        )
        cursors = await publish.revoke(ctx, session, "sub", [user_id])
        cursors += await publish.revoke(ctx, session, "sid", sids)
        await audit.record(
            ctx,
            session,
            "mfa_reset",
            info=info,
            subject=name,
            factors=removed,
            sessions=len(sids),
        )
    await publish.announce(ctx, cursors)
    return removed
