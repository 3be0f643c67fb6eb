"""The audit trail of security events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.models import AuditRow

__all__ = ["AuditQuery", "query_audit", "record_audit"]

_AUDIT = AuditRow.__table__


async def record_audit(
    session: AsyncSession,
    *,
    action: str,
    outcome: str,
    now: float,
    actor: str | None = None,
    subject: str | None = None,
    client_id: str | None = None,
    client_ip: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append one audit event (never with a secret in ``details``)."""
    # A Core insert in the caller's transaction: the ORM's unit of work (object,
    # flush, primary-key fetch) costs more than the row and nothing reads it back.
    await session.execute(
        insert(_AUDIT),
        {
            "at": now,
            "action": action,
            "outcome": outcome,
            "actor": actor,
            "subject": subject,
            "client_id": client_id,
            "client_ip": client_ip,
            "details": dict(details or {}),
        },
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditQuery:
    """Which audit events to read: those matching every given filter, newest first.

    ``since`` is inclusive and ``until`` exclusive; ``before_id`` pages back
    from the last id of the previous page.
    """

    action: str | None = None
    subject: str | None = None
    actor: str | None = None
    outcome: str | None = None
    client_id: str | None = None
    since: float | None = None
    until: float | None = None
    before_id: int | None = None
    limit: int = 100


async def query_audit(
    session: AsyncSession, query: AuditQuery = AuditQuery()
) -> Sequence[AuditRow]:
    """Audit events matching ``query``, newest first."""
    stmt = select(AuditRow)
    for column, value in (
        (AuditRow.action, query.action),
        (AuditRow.subject, query.subject),
        (AuditRow.actor, query.actor),
        (AuditRow.outcome, query.outcome),
        (AuditRow.client_id, query.client_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if query.since is not None:
        stmt = stmt.where(AuditRow.at >= query.since)
    if query.until is not None:
        stmt = stmt.where(AuditRow.at < query.until)
    if query.before_id is not None:
        stmt = stmt.where(AuditRow.id < query.before_id)
    stmt = stmt.order_by(AuditRow.id.desc()).limit(query.limit)
    return (await session.execute(stmt)).scalars().all()
