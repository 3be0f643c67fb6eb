"""Shared Signals streams and their outbox of signed SETs."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.models import SsfOutboxRow, SsfStreamRow

__all__ = [
    "acknowledge",
    "add_stream",
    "claim_push",
    "client_streams",
    "delete_stream",
    "drop_pending",
    "enqueue",
    "get_stream",
    "pending",
    "pending_push",
    "prune",
    "receiving_streams",
    "record_push_failure",
    "release_push",
    "retry_now",
    "settle_push",
]


async def add_stream(session: AsyncSession, row: SsfStreamRow) -> None:
    """Store a new stream."""
    session.add(row)
    await session.flush()


async def get_stream(session: AsyncSession, stream_id: str) -> SsfStreamRow | None:
    """One stream by id."""
    return await session.get(SsfStreamRow, stream_id)


async def client_streams(session: AsyncSession, client_id: str) -> Sequence[SsfStreamRow]:
    """Every stream a client owns, oldest first."""
    stmt = (
        select(SsfStreamRow)
        .where(SsfStreamRow.client_id == client_id)
        .order_by(SsfStreamRow.created_at, SsfStreamRow.stream_id)
    )
    return (await session.execute(stmt)).scalars().all()


async def receiving_streams(session: AsyncSession) -> Sequence[SsfStreamRow]:
    """Streams that take new SETs: enabled ones, and paused ones (which hold them)."""
    stmt = select(SsfStreamRow).where(SsfStreamRow.status.in_(("enabled", "paused")))
    return (await session.execute(stmt)).scalars().all()


async def delete_stream(session: AsyncSession, stream_id: str) -> None:
    """Delete a stream and its outbox."""
    await session.execute(delete(SsfOutboxRow).where(SsfOutboxRow.stream_id == stream_id))
    await session.execute(delete(SsfStreamRow).where(SsfStreamRow.stream_id == stream_id))


async def enqueue(
    session: AsyncSession, stream_id: str, jti: str, token: str, *, now: float
) -> None:
    """Add a signed SET to a stream's outbox."""
    session.add(
        SsfOutboxRow(
            stream_id=stream_id,
            jti=jti,
            set_token=token,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
    )
    await session.flush()


async def pending(session: AsyncSession, stream_id: str, limit: int) -> list[tuple[str, str]]:
    """``(jti, SET)`` of up to ``limit`` unacknowledged SETs of a stream, oldest first."""
    stmt = (
        select(SsfOutboxRow.jti, SsfOutboxRow.set_token)
        .where(SsfOutboxRow.stream_id == stream_id, SsfOutboxRow.acknowledged_at.is_(None))
        .order_by(SsfOutboxRow.id)
        .limit(limit)
    )
    return [(jti, token) for jti, token in (await session.execute(stmt)).all()]


async def acknowledge(
    session: AsyncSession, stream_id: str, jtis: Sequence[str], *, now: float
) -> int:
    """Mark SETs of a stream delivered; returns how many were pending."""
    if not jtis:
        return 0
    result = await session.execute(
        update(SsfOutboxRow)
        .where(
            SsfOutboxRow.stream_id == stream_id,
            SsfOutboxRow.jti.in_(list(jtis)),
            SsfOutboxRow.acknowledged_at.is_(None),
        )
        .values(acknowledged_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def pending_push(
    session: AsyncSession, stream_id: str, *, limit: int
) -> Sequence[SsfOutboxRow]:
    """The oldest unacknowledged SETs of a push stream, due or not (order is kept by the caller)."""
    stmt = (
        select(SsfOutboxRow)
        .where(SsfOutboxRow.stream_id == stream_id, SsfOutboxRow.acknowledged_at.is_(None))
        .order_by(SsfOutboxRow.id)
        .limit(limit)
    )
    return (await session.execute(stmt)).scalars().all()


async def record_push_failure(
    session: AsyncSession, row_id: int, *, error: str, retry_at: float, leased_until: float
) -> None:
    """Count a failed push attempt and when to try again.

    The attempt held the SET until ``leased_until``; if that lease is gone, the
    receiver updated its stream during the attempt (:func:`retry_now`), and the
    SET stays due at once instead of waiting out the back-off.
    """
    still_leased = SsfOutboxRow.next_attempt_at == leased_until
    await session.execute(
        update(SsfOutboxRow)
        .where(SsfOutboxRow.id == row_id)
        .values(
            attempts=SsfOutboxRow.attempts + 1,
            next_attempt_at=case((still_leased, retry_at), else_=SsfOutboxRow.next_attempt_at),
            last_error=error[:500],
        )
    )


async def prune(session: AsyncSession, *, acknowledged_before: float, created_before: float) -> int:
    """Delete SETs acknowledged a while ago, and undelivered ones too old to matter."""
    result = await session.execute(
        delete(SsfOutboxRow).where(
            (SsfOutboxRow.acknowledged_at < acknowledged_before)
            | (SsfOutboxRow.created_at < created_before)
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def drop_pending(session: AsyncSession, stream_id: str, *, now: float) -> int:
    """A disabled stream drops what it held (SSF 1.0 §8.1.2): mark it all delivered."""
    result = await session.execute(
        update(SsfOutboxRow)
        .where(SsfOutboxRow.stream_id == stream_id, SsfOutboxRow.acknowledged_at.is_(None))
        .values(acknowledged_at=now, last_error="dropped: stream disabled")
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def claim_push(session: AsyncSession, row_id: int, *, seen: float, until: float) -> bool:
    """Lease a SET for one push attempt: only the process that moves its time first wins."""
    result = await session.execute(
        update(SsfOutboxRow)
        .where(
            SsfOutboxRow.id == row_id,
            SsfOutboxRow.next_attempt_at == seen,
            SsfOutboxRow.acknowledged_at.is_(None),
        )
        .values(next_attempt_at=until)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


async def release_push(
    session: AsyncSession, row_ids: Sequence[int], *, leased_until: float, now: float
) -> None:
    """Give back SETs leased until ``leased_until`` and not attempted: due again now
    (behind their stream's oldest SET, which is delivered first)."""
    if not row_ids:
        return
    await session.execute(
        update(SsfOutboxRow)
        .where(
            SsfOutboxRow.id.in_(list(row_ids)),
            SsfOutboxRow.next_attempt_at == leased_until,
            SsfOutboxRow.acknowledged_at.is_(None),
        )
        .values(next_attempt_at=now)
    )


async def settle_push(session: AsyncSession, row_id: int, *, now: float, error: str | None) -> None:
    """A pushed SET is done: accepted, or refused by the receiver (``error``)."""
    await session.execute(
        update(SsfOutboxRow)
        .where(SsfOutboxRow.id == row_id)
        .values(acknowledged_at=now, attempts=SsfOutboxRow.attempts + 1, last_error=error)
    )


async def retry_now(session: AsyncSession, stream_id: str, *, now: float) -> None:
    """Make a stream's undelivered SETs due at once (its receiver says it is back)."""
    await session.execute(
        update(SsfOutboxRow)
        .where(
            SsfOutboxRow.stream_id == stream_id,
            SsfOutboxRow.acknowledged_at.is_(None),
            SsfOutboxRow.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
    )
