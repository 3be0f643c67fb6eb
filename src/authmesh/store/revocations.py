"""The durable revocation log: events in strictly increasing cursor order."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.revocation import ISSUED_BEFORE, RevocationEvent, issued_at, revocation_keys
from authmesh.store.models import RevocationRow

__all__ = [
    "append_event",
    "covering_cursor",
    "events_since",
    "latest_cursor",
    "prune_expired",
    "recent_rows",
]


def _to_event(row: RevocationRow) -> RevocationEvent:
    return RevocationEvent(
        kind=row.kind,  # type: ignore[arg-type]
        value=row.value,
        not_before=row.not_before,
        expires_at=row.expires_at,
        cursor=row.cursor,
    )


async def append_event(session: AsyncSession, event: RevocationEvent, *, now: float) -> int:
    """Write an event; returns its cursor.

    On PostgreSQL a transaction-scoped advisory lock makes concurrent writers
    commit in cursor order, so a reader that has seen cursor N never later finds
    a smaller cursor appear (sequences alone do not promise that).
    """
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(427002)"))
    row = RevocationRow(
        kind=event.kind,
        value=event.value,
        not_before=event.not_before,
        expires_at=event.expires_at,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row.cursor


async def events_since(
    session: AsyncSession, cursor: int, *, now: float, limit: int = 500
) -> list[RevocationEvent]:
    """Live events after ``cursor``, ascending; expired ones are left out."""
    stmt = (
        select(RevocationRow)
        .where(RevocationRow.cursor > cursor, RevocationRow.expires_at > now)
        .order_by(RevocationRow.cursor)
        .limit(limit)
    )
    return [_to_event(row) for row in (await session.execute(stmt)).scalars().all()]


async def recent_rows(session: AsyncSession, *, limit: int = 20) -> Sequence[RevocationRow]:
    """The newest events as stored (with when they were written), newest first."""
    stmt = select(RevocationRow).order_by(RevocationRow.cursor.desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def covering_cursor(session: AsyncSession, claims: Mapping[str, Any]) -> int | None:
    """The cursor of an event that revokes a token with these claims, or ``None``.

    The rule of :mod:`authmesh.revocation` as one query; expired events are
    included, since a token they cover has expired too.
    """
    iat = issued_at(claims)
    covered: list[ColumnElement[bool]] = []
    for kind, value in revocation_keys(claims):
        match = and_(RevocationRow.kind == kind, RevocationRow.value == value)
        if kind in ISSUED_BEFORE and iat != -math.inf:
            match = and_(match, RevocationRow.not_before > iat)
        covered.append(match)
    if not covered:
        return None
    stmt = select(RevocationRow.cursor).where(or_(*covered)).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()


async def latest_cursor(session: AsyncSession) -> int:
    """The highest cursor written so far (0 when none)."""
    value = (await session.execute(select(func.max(RevocationRow.cursor)))).scalar_one()
    return int(value or 0)


async def prune_expired(session: AsyncSession, *, now: float) -> int:
    """Delete events that can no longer matter, but never the newest one.

    Keeping the newest row means the cursor sequence never restarts (SQLite
    reuses the largest rowid + 1 after a delete of the top row).
    """
    top = await latest_cursor(session)
    result = await session.execute(
        delete(RevocationRow).where(RevocationRow.expires_at <= now, RevocationRow.cursor < top)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
