"""The audit trail of security events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.models import AuditRow

__all__ = ["query_audit", "record_audit"]

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


async def query_audit(
    session: AsyncSession,
    *,
    action: str | None = None,
    subject: str | None = None,
    actor: str | None = None,
    outcome: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> Sequence[AuditRow]:
    """Audit events matching every given filter, newest first."""
    stmt = select(AuditRow)
    if action is not None:
        stmt = stmt.where(AuditRow.action == action)
    if subject is not None:
        stmt = stmt.where(AuditRow.subject == subject)
    if actor is not None:
        stmt = stmt.where(AuditRow.actor == actor)
    if outcome is not None:
        stmt = stmt.where(AuditRow.outcome == outcome)
    if since is not None:
        stmt = stmt.where(AuditRow.at >= since)
    if until is not None:
        stmt = stmt.where(AuditRow.at < until)
    if before_id is not None:
        stmt = stmt.where(AuditRow.id < before_id)
    stmt = stmt.order_by(AuditRow.id.desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()
