"""Publishing revocation events: write them in the caller's transaction, then wake the feed."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.revocation import RevocationEvent, RevocationKind
from authmesh.server.context import ServerContext
from authmesh.server.ssf.events import RevocationReason
from authmesh.server.ssf.outbox import announce_revocations
from authmesh.store import revocations

__all__ = ["announce", "revoke"]


def _horizon(ctx: ServerContext) -> float:
    """How long an event can matter: the longest access-token life plus the leeway."""
    return float(ctx.settings.access_token_ttl + ctx.settings.leeway)


async def revoke(
    ctx: ServerContext,
    session: AsyncSession,
    kind: RevocationKind,
    values: Iterable[str],
    *,
    through_this_second: bool = False,
    reason: RevocationReason = "revoked",
) -> list[int]:
    """Write revocation events in the caller's transaction; returns their cursors.

    Call :func:`announce` after the transaction commits so feed streams wake.
    ``through_this_second`` makes a ``sub`` event also cover tokens issued
    later in the current second: for revocations no ``sid`` event backs up
    (a role taken away, a client removed). ``reason`` picks the Shared Signals
    event each revocation is announced as (docs/ssf.md), written to every
    stream's outbox in this same transaction.
    """
    now = ctx.now()
    # Whole seconds: tokens carry integer iat, and one issued later in this same
    # second (a new login after a password change) must stay valid. Tokens of
    # this second issued before the event die with their session's sid event.
    not_before = float(int(now)) + (1.0 if through_this_second else 0.0)
    expires_at = now + _horizon(ctx)
    cursors = []
    events = []
    for value in values:
        event = RevocationEvent(
            kind=kind, value=value, not_before=not_before, expires_at=expires_at
        )
        cursors.append(await revocations.append_event(session, event, now=now))
        events.append(event)
    await announce_revocations(ctx, session, events, reason)
    return cursors


async def announce(ctx: ServerContext, cursors: Iterable[int]) -> None:
    """Wake the revocation feed after a commit that wrote events."""
    top = max(cursors, default=0)
    if top:
        await ctx.hub.notify(top)
