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

from sqlalchemy import ColumnElement, Table, delete, or_, select
from sqlalchemy.sql.elements import ColumnClause

from authmesh.store import revocations
from authmesh.store.db import Database
from authmesh.store.models import (
    AuditRow,
    AuthorizationCodeRow,
    RefreshTokenRow,
    RevocationRow,
    SessionRow,
)

__all__ = ["Cutoffs", "PruneCounts", "prune"]

_RT = RefreshTokenRow.__table__
_SESSIONS = SessionRow.__table__
_CODES = AuthorizationCodeRow.__table__
_EVENTS = RevocationRow.__table__
_AUDIT = AuditRow.__table__


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
    return or_(_SESSIONS.c.ended_at < cutoff, _SESSIONS.c.expires_at < cutoff)


async def _delete_batches(
    db: Database,
    table: Table,
    key: ColumnClause[str] | ColumnClause[int],
    picked: ColumnElement[bool],
    *,
    batch_size: int,
    source: object = None,
) -> int:
    """Delete the rows ``picked`` selects, ``batch_size`` per transaction; how many.

    ``source`` is what the selection reads from when it is not ``table`` alone
    (a join).
    """
    total = 0
    while True:
        chosen = select(key).select_from(source if source is not None else table)
        chosen = chosen.where(picked).limit(batch_size)
        async with db.transaction() as session:
            result = await session.execute(delete(table).where(key.in_(chosen.scalar_subquery())))
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
    counts = PruneCounts()
    counts.refresh_tokens = await _delete_batches(
        db, _RT, _RT.c.token_hash, _RT.c.expires_at < cutoffs.refresh_tokens, batch_size=batch_size
    )
    counts.refresh_tokens += await _delete_batches(
        db,
        _RT,
        _RT.c.token_hash,
        _ended_sessions(cutoffs.sessions),
        batch_size=batch_size,
        source=_RT.join(_SESSIONS, _SESSIONS.c.id == _RT.c.session_id),
    )
    counts.sessions = await _delete_batches(
        db, _SESSIONS, _SESSIONS.c.id, _ended_sessions(cutoffs.sessions), batch_size=batch_size
    )
    counts.authorization_codes = await _delete_batches(
        db, _CODES, _CODES.c.code_hash, _CODES.c.expires_at < cutoffs.codes, batch_size=batch_size
    )
    async with db.transaction() as session:
        # The newest event stays: SQLite would hand its cursor out again after a
        # delete of the top row, and a follower would then skip the new event.
        top = await revocations.latest_cursor(session)
    counts.revocation_events = await _delete_batches(
        db,
        _EVENTS,
        _EVENTS.c.cursor,
        (_EVENTS.c.expires_at < cutoffs.events_expired)
        & (_EVENTS.c.created_at < cutoffs.events_created)
        & (_EVENTS.c.cursor < top),
        batch_size=batch_size,
    )
    if cutoffs.audit is not None:
        counts.audit_events = await _delete_batches(
            db, _AUDIT, _AUDIT.c.id, _AUDIT.c.at < cutoffs.audit, batch_size=batch_size
        )
    return counts
