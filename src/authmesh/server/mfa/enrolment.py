"""What every factor enrolment shares: the factor's name, and the recovery codes issued
with a user's first factor (or on request, shown once)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.server import audit
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.errors import AccessDenied
from authmesh.server.mfa import recovery
from authmesh.store import factors as factor_store

__all__ = ["factor_name", "issue_recovery_codes", "regenerate_recovery_codes"]

_MAX_NAME = 100


def factor_name(name: str, default: str) -> str:
    """The name a user gave a factor, whitespace folded and cut short; else ``default``."""
    cleaned = " ".join(name.split())[:_MAX_NAME]
    return cleaned or default


async def issue_recovery_codes(
    ctx: ServerContext, session: AsyncSession, user_id: str
) -> list[str]:
    """Ten new recovery codes replacing the user's, in ``session`` (shown once)."""
    codes = recovery.new_recovery_codes()
    await factor_store.replace_recovery_codes(
        session,
        user_id,
        [recovery.recovery_code_hash(ctx.pepper, c) for c in codes],
        now=ctx.now(),
    )
    return codes


async def regenerate_recovery_codes(
    ctx: ServerContext, user_id: str, username: str, *, info: RequestInfo | None = None
) -> list[str]:
    """Replace the user's recovery codes with ten new ones (shown once).

    Raises:
        AccessDenied: the user has no factor (recovery codes back one up).
    """
    async with ctx.db.transaction() as session:
        if not await factor_store.list_factors(session, user_id):
            raise AccessDenied("set up an authenticator or a passkey first")
        codes = await issue_recovery_codes(ctx, session, user_id)
        await audit.record(ctx, session, "mfa_recovery_codes", info=info, subject=username)
    return codes
