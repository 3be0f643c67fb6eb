"""Fixtures of the storage contract tests: each runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from authmesh.store.db import Database
from authmesh.testing.databases import DbTarget
from support.databases import db_target

_PARAMS = [
    pytest.param(b, id=b, marks=[pytest.mark.postgres] if b == "postgres" else [])
    for b in ("sqlite", "postgres")
]


@pytest.fixture(params=_PARAMS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DbTarget]:
    """A fresh, empty database of each backend."""
    with db_target(request.param, tmp_path) as found:
        yield found


@pytest.fixture
async def db(target: DbTarget) -> AsyncIterator[Database]:
    """The database migrated to head."""
    database = Database(target.url, schema=target.schema)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()
