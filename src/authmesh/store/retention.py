"""Deleting rows that can no longer matter, a batch per transaction.

Which rows may go is decided by the caller as a set of :class:`Cutoffs` (see
``authmesh.server.retention`` for why each one is safe); this module only turns
them into batched ``DELETE``\\ s. Each batch is its own short transaction, so
pruning a large backlog never holds a lock for long: requests interleave
between batches on PostgreSQL, and SQLite's single writer is free again after
each one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from sqlalchemy import ColumnElement, FromClause, delete, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from authmesh.store import revocations
from authmesh.store.db import Database
from authmesh.store.models import (
    AuditRow,
    AuthorizationCodeRow,
    Base,
    RefreshTokenRow,
    RevocationRow,
    SessionRow,
)

__all__ = ["Cutoffs", "PruneCounts", "prune"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Cutoffs:
    """Epoch times: a row of each kind goes when its time is before the cutoff.

    ``audit`` is ``None`` when audit events are kept forever.
    """

    #: A refresh token whose ``expires_at`` is before this, used or not.
    refresh_tokens: float
    #: A session that ended, or reached its absolute end, before this.
    sessions: float
    #: An authorization code whose ``expires_at`` is before this.
    codes: float
    #: A revocation event whose ``expires_at`` is before this …
    events_expired: float
    #: … and that was written before this.
    events_created: float
    #: An audit event recorded before this.
    audit: float | None


@dataclass(slots=True)
class PruneCounts:
    """How many rows of each kind were deleted."""

    refresh_tokens: int = 0
    sessions: int = 0
    authorization_codes: int = 0
    revocation_events: int = 0
    audit_events: int = 0

    @property
    def total(self) -> int:
        """Every row deleted."""
        return sum(getattr(self, f.name) for f in fields(self))

    def as_dict(self) -> dict[str, int]:
        """Kind -> count, in a stable order."""
        return asdict(self)

    def add(self, other: PruneCounts) -> None:
        """Add another pass's counts to these."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def _ended_sessions(cutoff: float) -> ColumnElement[bool]:
    return or_(SessionRow.ended_at < cutoff, SessionRow.expires_at < cutoff)


async def _delete_batches(
    db: Database,
    model: type[Base],
    key: InstrumentedAttribute[Any],
    picked: ColumnElement[bool],
    *,
    batch_size: int,
    source: FromClause | None = None,
) -> int:
    """Delete the rows of ``model`` that ``picked`` selects, ``batch_size`` per
    transaction; how many.

    ``source`` is what the selection reads from when it is not the model's table
    alone (a join).
    """
    total = 0
    while True:
        chosen = select(key).select_from(source if source is not None else model)
        chosen = chosen.where(picked).limit(batch_size)
        # No objects of these rows live in any session: nothing to synchronize.
        stmt = delete(model).where(key.in_(chosen.scalar_subquery()))
        stmt = stmt.execution_options(synchronize_session=False)
        async with db.transaction() as session:
            result = await session.execute(stmt)
        deleted = int(result.rowcount)  # type: ignore[attr-defined]
        total += deleted
        if deleted < batch_size:
            return total


async def prune(db: Database, cutoffs: Cutoffs, *, batch_size: int) -> PruneCounts:
    """Delete every row past its cutoff, in batches; the counts per kind.

    Refresh tokens go before their sessions, so the counts include the tokens a
    session's removal would otherwise take with it (``ON DELETE CASCADE``) and no
    cascade ever deletes more than a batch.
    """
    n = batch_size
    counts = PruneCounts()
    token = RefreshTokenRow.token_hash
    expired = RefreshTokenRow.expires_at < cutoffs.refresh_tokens
    counts.refresh_tokens = await _delete_batches(db, RefreshTokenRow, token, expired, batch_size=n)
    of_ended_sessions = RefreshTokenRow.__table__.join(
        SessionRow.__table__, SessionRow.id == RefreshTokenRow.session_id
    )
    counts.refresh_tokens += await _delete_batches(
        db,
        RefreshTokenRow,
        token,
        _ended_sessions(cutoffs.sessions),
        batch_size=n,
        source=of_ended_sessions,
    )
    counts.sessions = await _delete_batches(
        db, SessionRow, SessionRow.id, _ended_sessions(cutoffs.sessions), batch_size=n
    )
    counts.authorization_codes = await _delete_batches(
        db,
        AuthorizationCodeRow,
        AuthorizationCodeRow.code_hash,
        AuthorizationCodeRow.expires_at < cutoffs.codes,
        batch_size=n,
    )
    async with db.transaction() as session:
        # The newest event stays: SQLite would hand its cursor out again after a
        # delete of the top row, and a follower would then skip the new event.
        top = await revocations.latest_cursor(session)
    counts.revocation_events = await _delete_batches(
        db,
        RevocationRow,
        RevocationRow.cursor,
        (RevocationRow.expires_at < cutoffs.events_expired)
        & (RevocationRow.created_at < cutoffs.events_created)
        & (RevocationRow.cursor < top),
        batch_size=n,
    )
    if cutoffs.audit is not None:
        counts.audit_events = await _delete_batches(
            db, AuditRow, AuditRow.id, AuditRow.at < cutoffs.audit, batch_size=n
        )
    return counts
