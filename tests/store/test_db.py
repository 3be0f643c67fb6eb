"""The database's connection pool: a connection the server dropped never fails a request."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text

from authmesh.store.db import Database
from authmesh.testing.databases import DbTarget


async def _backend_pid(db: Database) -> int:
    async with db.transaction() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


def _plain_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def test_a_connection_dropped_by_the_server_is_replaced(
    db: Database, target: DbTarget
) -> None:
    if target.backend != "postgres":
        pytest.skip("SQLite has no server to drop connections")
    pid = await _backend_pid(db)
    admin = await asyncpg.connect(_plain_url(target.url))
    try:
        # What a server restart does to every pooled connection.
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        while await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
            pass
    finally:
        await admin.close()

    for _ in range(3):
        assert await _backend_pid(db) != pid
