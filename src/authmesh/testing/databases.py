"""Databases for a real auth server in tests: a SQLite file, or a fresh PostgreSQL schema.

PostgreSQL is the server named by ``AUTHMESH_TEST_PG`` (default: database
``test`` at 127.0.0.1:5432); each :func:`database` gets a schema of its own,
dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PG_URL", "DbTarget", "database", "postgres_available"]

PG_URL = os.environ.get("AUTHMESH_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True, slots=True)
class DbTarget:
    """Where an auth server keeps its data: backend, SQLAlchemy URL, schema, folder."""

    backend: str
    url: str
    schema: str | None
    data_dir: Path

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """``ServerSettings`` values for this database."""
        values: dict[str, Any] = {"data_dir": self.data_dir, "database_url": self.url}
        if self.schema:
            values["database_schema"] = self.schema
        return {**values, **overrides}


async def _execute(url: str, sql: str) -> None:
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def postgres_available(url: str = PG_URL) -> bool:
    """Whether the PostgreSQL server at ``url`` answers."""
    try:
        asyncio.run(_execute(url, "SELECT 1"))
    except Exception:
        return False
    return True


@contextmanager
def database(
    backend: str, data_dir: Path, *, pg_url: str = PG_URL, prefix: str = "t_"
) -> Iterator[DbTarget]:
    """A fresh, empty database of ``backend`` (``sqlite`` or ``postgres``) for one use.

    SQLite is a file in ``data_dir``; PostgreSQL a new schema (named ``prefix``
    plus random hex) that is dropped on exit.
    """
    if backend == "sqlite":
        yield DbTarget("sqlite", f"sqlite+aiosqlite:///{data_dir / 'authmesh.db'}", None, data_dir)
        return
    if backend != "postgres":
        raise ValueError(f"unknown database backend {backend!r}")
    schema = f"{prefix}{uuid.uuid4().hex[:16]}"
    asyncio.run(_execute(pg_url, f"CREATE SCHEMA {schema}"))
    try:
        yield DbTarget("postgres", pg_url, schema, data_dir)
    finally:
        asyncio.run(_execute(pg_url, f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
