"""The two storage backends every storage and server test runs on.

SQLite: a file in a temporary folder. PostgreSQL: the real server at
127.0.0.1:5432, database ``test``, with a fresh schema per test (dropped after).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["PG_URL", "DbTarget", "db_target", "postgres_available"]

PG_URL = os.environ.get("AUTHMESH_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
_PG_DSN = PG_URL.replace("postgresql+asyncpg://", "postgresql://")


@dataclass(frozen=True, slots=True)
class DbTarget:
    """Where a test's database lives."""

    backend: str
    url: str
    schema: str | None
    data_dir: Path


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_PG_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def postgres_available() -> bool:
    """Whether the PostgreSQL test server answers."""
    try:
        asyncio.run(_pg("SELECT 1"))
    except Exception:
        return False
    return True


@contextmanager
def db_target(backend: str, tmp_path: Path) -> Iterator[DbTarget]:
    """A fresh database of this backend for one test."""
    if backend == "sqlite":
        yield DbTarget("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'authmesh.db'}", None, tmp_path)
        return
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not running")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    asyncio.run(_pg(f"CREATE SCHEMA {schema}"))
    try:
        yield DbTarget("postgres", PG_URL, schema, tmp_path)
    finally:
        asyncio.run(_pg(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
