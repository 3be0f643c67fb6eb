"""Registered OAuth clients."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.models import ClientRow

__all__ = ["create_client", "delete_client", "get_client", "list_clients"]


async def create_client(
    session: AsyncSession,
    *,
    client_id: str,
    name: str,
    secret_hash: str | None,
    grant_types: Sequence[str],
    scopes: Sequence[str],
    audiences: Sequence[str],
    roles: Sequence[str],
    now: float,
) -> ClientRow:
    """Insert a client; the primary key rejects a duplicate ``client_id``."""
    row = ClientRow(
        client_id=client_id,
        name=name,
        secret_hash=secret_hash,
        grant_types=sorted(set(grant_types)),
        scopes=sorted(set(scopes)),
        audiences=sorted(set(audiences)),
        roles=sorted(set(roles)),
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def get_client(session: AsyncSession, client_id: str) -> ClientRow | None:
    """The client, or ``None``."""
    return await session.get(ClientRow, client_id)


async def list_clients(session: AsyncSession) -> Sequence[ClientRow]:
    """Every client, by id."""
    return (await session.execute(select(ClientRow).order_by(ClientRow.client_id))).scalars().all()


async def delete_client(session: AsyncSession, client_id: str) -> bool:
    """Remove a client; whether it existed."""
    result = await session.execute(delete(ClientRow).where(ClientRow.client_id == client_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]
