"""Registered OAuth clients."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.models import ClientRow
from authmesh.store.rows import Statements, detached

__all__ = [
    "CLIENT_COLUMNS",
    "client_of",
    "create_client",
    "delete_client",
    "get_client",
    "list_clients",
    "set_secret_hash",
    "update_client",
]

_CLIENTS = ClientRow.__table__
#: Every column of a client, in the order :func:`client_of` reads them: the first
#: columns of the statements that read a client together with something else.
CLIENT_COLUMNS = tuple(_CLIENTS.c)
_GET_CLIENT = select(*CLIENT_COLUMNS).where(_CLIENTS.c.client_id == bindparam("client_id"))


def client_of(row: Sequence[Any]) -> ClientRow:
    """The client (detached) in the first columns of a row that starts with
    :data:`CLIENT_COLUMNS`."""
    return detached(ClientRow, {c.key: row[i] for i, c in enumerate(CLIENT_COLUMNS)})


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
    redirect_uris: Sequence[str] = (),
    post_logout_redirect_uris: Sequence[str] = (),
    first_party: bool = True,
    serves: Sequence[str] = (),
    dpop_bound_access_tokens: bool = False,
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
        redirect_uris=list(dict.fromkeys(redirect_uris)),
        post_logout_redirect_uris=list(dict.fromkeys(post_logout_redirect_uris)),
        first_party=first_party,
        serves=sorted(set(serves)),
        dpop_bound_access_tokens=dpop_bound_access_tokens,
    )
    session.add(row)
    await session.flush()
    return row


async def get_client(session: Statements, client_id: str) -> ClientRow | None:
    """The client, or ``None``, detached: read on every token request, so a Core select.

    The row is not put in the session's identity map; change a client through
    this module's functions, not through the returned object.
    """
    row = (await session.execute(_GET_CLIENT, {"client_id": client_id})).first()
    return None if row is None else client_of(row)


async def list_clients(session: AsyncSession) -> Sequence[ClientRow]:
    """Every client, by id."""
    return (await session.execute(select(ClientRow).order_by(ClientRow.client_id))).scalars().all()


async def delete_client(session: AsyncSession, client_id: str) -> bool:
    """Remove a client; whether it existed."""
    result = await session.execute(delete(ClientRow).where(ClientRow.client_id == client_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def update_client(
    session: AsyncSession,
    client_id: str,
    *,
    name: str,
    grant_types: Sequence[str],
    scopes: Sequence[str],
    audiences: Sequence[str],
    redirect_uris: Sequence[str],
    post_logout_redirect_uris: Sequence[str],
    first_party: bool,
    serves: Sequence[str],
) -> bool:
    """Replace a client's settings (not its secret or roles); whether it exists."""
    result = await session.execute(
        update(ClientRow)
        .where(ClientRow.client_id == client_id)
        .values(
            name=name,
            grant_types=sorted(set(grant_types)),
            scopes=sorted(set(scopes)),
            audiences=sorted(set(audiences)),
            redirect_uris=list(dict.fromkeys(redirect_uris)),
            post_logout_redirect_uris=list(dict.fromkeys(post_logout_redirect_uris)),
            first_party=first_party,
            serves=sorted(set(serves)),
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_secret_hash(session: AsyncSession, client_id: str, secret_hash: str) -> bool:
    """Replace a confidential client's secret hash; whether it is one."""
    result = await session.execute(
        update(ClientRow)
        .where(ClientRow.client_id == client_id, ClientRow.secret_hash.is_not(None))
        .values(secret_hash=secret_hash)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
