"""The audit trail of security events: recording them, reading them, and their JSON.

Every service module records in the caller's transaction, so an event is
written exactly when the change it describes is. The admin API and the CLI
read through :func:`query` and show :meth:`AuditEntry.to_json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.server.context import RequestInfo, ServerContext
from authmesh.store import audit as audit_store
from authmesh.store.audit import AuditQuery
from authmesh.store.models import AuditRow

__all__ = ["AuditEntry", "AuditQuery", "query", "record"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One recorded security event."""

    id: int
    at: float
    action: str
    outcome: str
    actor: str | None
    subject: str | None
    client_id: str | None
    client_ip: str | None
    details: dict[str, Any]

    @classmethod
    def from_row(cls, row: AuditRow) -> AuditEntry:
        """The entry of a stored row."""
        return cls(
            id=row.id,
            at=row.at,
            action=row.action,
            outcome=row.outcome,
            actor=row.actor,
            subject=row.subject,
            client_id=row.client_id,
            client_ip=row.client_ip,
            details=row.details,
        )

    def to_json(self) -> dict[str, Any]:
        """The entry as the admin API and ``authmesh audit --json`` show it."""
        return asdict(self)


async def record(
    ctx: ServerContext,
    session: AsyncSession,
    action: str,
    *,
    outcome: str = "success",
    info: RequestInfo | None = None,
    subject: str | None = None,
    client_id: str | None = None,
    **details: object,
) -> None:
    """Record a security event in the caller's transaction (never a secret in ``details``)."""
    await audit_store.record_audit(
        session,
        action=action,
        outcome=outcome,
        now=ctx.now(),
        actor=info.actor if info else None,
        subject=subject,
        client_id=client_id,
        client_ip=info.client_ip if info else None,
        details=details,
    )


async def query(ctx: ServerContext, what: AuditQuery = AuditQuery()) -> list[AuditEntry]:
    """The events ``what`` asks for, newest first."""
    async with ctx.db.transaction() as session:
        return [AuditEntry.from_row(row) for row in await audit_store.query_audit(session, what)]
