"""Small named values that must survive restarts."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.db import Database
from authmesh.store.models import MetaRow

__all__ = ["get_or_create_meta"]


async def get_or_create_meta(db: Database, name: str, make: Callable[[], str]) -> str:
    """The value stored under ``name``, creating it once (several processes may race)."""
    async with db.transaction() as session:
        row = await session.get(MetaRow, name)
        if row is not None:
            return row.value
    try:
        async with db.transaction() as session:
            session.add(MetaRow(name=name, value=make()))
    except IntegrityError:
        pass  # another process won the race; read its value
    async with db.transaction() as session:
        row = await _get(session, name)
        return row.value


async def _get(session: AsyncSession, name: str) -> MetaRow:
    row = await session.get(MetaRow, name)
    if row is None:  # pragma: no cover - only if the row was deleted by hand mid-call
        raise RuntimeError(f"meta value {name!r} vanished")
    return row
