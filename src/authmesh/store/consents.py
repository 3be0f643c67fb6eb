"""What each user let each third-party client have."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.models import ConsentRow
from authmesh.store.rows import Statements

__all__ = ["consented_scopes", "delete_consent", "list_consents", "save_consent"]

_CONSENTED_SCOPES = select(ConsentRow.scopes).where(
    ConsentRow.user_id == bindparam("user_id"), ConsentRow.client_id == bindparam("client_id")
)


async def consented_scopes(session: Statements, user_id: str, client_id: str) -> list[str] | None:
    """The scopes the user let the client have, or ``None`` if never asked (a Core read)."""
    params = {"user_id": user_id, "client_id": client_id}
    scopes: list[str] | None = (await session.execute(_CONSENTED_SCOPES, params)).scalar()
    return scopes


async def save_consent(
    session: AsyncSession, user_id: str, client_id: str, scopes: Iterable[str], *, now: float
) -> ConsentRow:
    """Record consent to ``scopes``, added to what was consented before."""
    row = await session.get(ConsentRow, (user_id, client_id), with_for_update=True)
    if row is None:
        row = ConsentRow(
            user_id=user_id, client_id=client_id, scopes=sorted(set(scopes)), granted_at=now
        )
        session.add(row)
    else:
        row.scopes = sorted(set(row.scopes) | set(scopes))
        row.granted_at = now
    await session.flush()
    return row


async def list_consents(session: AsyncSession, user_id: str) -> Sequence[ConsentRow]:
    """The user's consents, by client."""
    stmt = select(ConsentRow).where(ConsentRow.user_id == user_id).order_by(ConsentRow.client_id)
    return (await session.execute(stmt)).scalars().all()


async def delete_consent(session: AsyncSession, user_id: str, client_id: str) -> bool:
    """Withdraw a consent; whether there was one."""
    result = await session.execute(
        delete(ConsentRow).where(ConsentRow.user_id == user_id, ConsentRow.client_id == client_id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
