"""The hook: every revocation writes its SET to every stream's outbox, in the same transaction.

A committed revocation therefore always has its SETs, and a rolled-back one
has none. Receivers are woken by the revocation feed's hub (``announce``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.revocation import RevocationEvent
from authmesh.server.context import ServerContext
from authmesh.server.ssf.events import (
    VERIFICATION,
    RevocationReason,
    Signal,
    mint_set,
    signals_for,
)
from authmesh.store import ssf as ssf_store
from authmesh.store.models import SessionRow, SsfStreamRow

__all__ = ["announce_revocations", "announce_signals"]


async def _users_of_sessions(session: AsyncSession, sids: list[str]) -> dict[str, str]:
    if not sids:
        return {}
    stmt = select(SessionRow.id, SessionRow.user_id).where(SessionRow.id.in_(sids))
    return {sid: user for sid, user in (await session.execute(stmt)).all()}


async def announce_revocations(
    ctx: ServerContext,
    session: AsyncSession,
    events: Sequence[RevocationEvent],
    reason: RevocationReason,
) -> None:
    """Write one SET per event and receiving stream (nothing when no stream exists)."""
    streams = await ssf_store.receiving_streams(session)
    if not streams or not events:
        return
    users = await _users_of_sessions(session, [e.value for e in events if e.kind == "sid"])
    issuer = ctx.issuer.issuer
    signals = [
        signals_for(
            reason,
            event.kind,
            event.value,
            issuer=issuer,
            timestamp=event.not_before,
            user_of_session=users.get(event.value) if event.kind == "sid" else None,
        )
        for event in events
    ]
    await _write(ctx, session, streams, signals)


async def announce_signals(
    ctx: ServerContext,
    session: AsyncSession,
    signals: Sequence[Signal],
    *,
    streams: Sequence[SsfStreamRow] | None = None,
) -> None:
    """Write SETs of signals that revoke nothing (account-enabled, verification)."""
    targets = await ssf_store.receiving_streams(session) if streams is None else streams
    await _write(ctx, session, targets, signals)


async def _write(
    ctx: ServerContext,
    session: AsyncSession,
    streams: Sequence[SsfStreamRow],
    signals: Sequence[Signal],
) -> None:
    now = ctx.now()
    key = ctx.keys.signing_key()
    for stream in streams:
        wanted = set(stream.events_requested)
        for signal in signals:
            if signal.event_type not in wanted and signal.event_type != VERIFICATION:
                continue
            jti, token = mint_set(
                signal, issuer=ctx.issuer.issuer, audience=stream.audience, key=key, now=now
            )
            await ssf_store.enqueue(session, stream.stream_id, jti, token, now=now)
