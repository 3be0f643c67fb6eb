"""What each user let each third-party client have."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.models import ConsentRow

__all__ = ["delete_consent", "get_consent", "list_consents", "save_consent"]


async def get_consent(session: AsyncSession, user_id: str, client_id: str) -> ConsentRow | None:
    """The user's consent for the client, or ``None``."""
    return await session.get(ConsentRow, (user_id, client_id))


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
