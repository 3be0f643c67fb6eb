"""Telling a database outage from a bug, and describing it without SQL or parameters."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from authmesh.store.db import Database, DatabaseTimeouts
from authmesh.store.outages import database_outage, describe_outage
from authmesh.testing.databases import PG_URL, postgres_available

SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def _wrapped(orig: Exception, cls: type[sa_exc.DBAPIError] = sa_exc.OperationalError) -> Exception:
    """What SQLAlchemy raises for a failed statement: its text holds the SQL and parameters."""
    return cls(
        "SELECT * FROM refresh_tokens WHERE token_hash = ?", (SECRET,), orig, hide_parameters=False
    )


def _raised(exc: Exception) -> Exception:
    try:
        raise exc
    except Exception as caught:
        return caught


def test_sqlite_busy_and_unopenable_are_outages_a_missing_table_is_not(tmp_path: Path) -> None:
    busy = tmp_path / "busy.db"
    holder = sqlite3.connect(busy, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError) as locked:
        sqlite3.connect(busy, timeout=0.05).execute("BEGIN IMMEDIATE")
    holder.close()
    with pytest.raises(sqlite3.OperationalError) as missing_table:
        sqlite3.connect(":memory:").execute("SELECT * FROM nope")
    with pytest.raises(sqlite3.OperationalError) as cannot_open:
        sqlite3.connect(tmp_path / "no" / "such" / "dir.db")

    assert database_outage(locked.value) is locked.value
    assert database_outage(_wrapped(locked.value)) is not None
    assert database_outage(cannot_open.value) is cannot_open.value
    assert database_outage(missing_table.value) is None
    assert database_outage(_wrapped(missing_table.value)) is None


def test_integrity_errors_and_foreign_os_errors_are_bugs() -> None:
    async def duplicate() -> BaseException:
        engine = create_async_engine("sqlite+aiosqlite://")
        try:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
                await conn.execute(text("INSERT INTO t VALUES (1)"))
                await conn.execute(text("INSERT INTO t VALUES (1)"))
        except sa_exc.IntegrityError as exc:
            return exc
        finally:
            await engine.dispose()
        raise AssertionError("no IntegrityError")

    assert database_outage(asyncio.run(duplicate())) is None
    # Raised here, not in database code: not the database's.
    assert database_outage(_raised(ConnectionRefusedError(111, "refused"))) is None
    assert database_outage(_raised(TimeoutError())) is None
    assert database_outage(_raised(FileNotFoundError(2, "gone"))) is None
    assert database_outage(sa_exc.TimeoutError("QueuePool limit reached")) is not None


def test_a_refused_postgres_connection_is_an_outage_found_in_the_chain() -> None:
    async def refused() -> BaseException:
        database = Database(
            "postgresql://postgres@127.0.0.1:1/test", timeouts=DatabaseTimeouts(connect=1.0)
        )
        try:
            async with database.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return exc
        finally:
            await database.dispose()
        raise AssertionError("connected to port 1")

    failure = asyncio.run(refused())
    wrapped = RuntimeError("while serving")
    wrapped.__cause__ = failure

    assert database_outage(failure) is not None
    assert database_outage(wrapped) is not None
    assert database_outage(ExceptionGroup("tasks", [ValueError(), failure])) is not None


def test_describe_names_types_and_message_never_sql_or_parameters() -> None:
    orig = sqlite3.OperationalError("database is locked")
    described = describe_outage(_wrapped(orig))

    assert described == "OperationalError: database is locked"
    assert SECRET not in described
    assert "SELECT" not in described
    assert describe_outage(TimeoutError()) == "TimeoutError: timed out"
    pool = describe_outage(
        sa_exc.TimeoutError("QueuePool limit of size 10 overflow 20 reached, timeout 3.00")
    )
    assert pool.startswith("TimeoutError: QueuePool limit")
    assert "Background on this error" not in pool


@pytest.mark.postgres
def test_a_slow_postgres_statement_is_cancelled_at_the_statement_timeout() -> None:
    async def run() -> tuple[str, BaseException, float]:
        database = Database(PG_URL, timeouts=DatabaseTimeouts(statement=0.5))
        try:
            async with database.engine.connect() as conn:
                setting = str((await conn.execute(text("SHOW statement_timeout"))).scalar())
            started = time.monotonic()
            try:
                async with database.engine.connect() as conn:
                    await conn.execute(text("SELECT pg_sleep(5)"))
            except Exception as exc:
                return setting, exc, time.monotonic() - started
            raise AssertionError("pg_sleep(5) was not cancelled")
        finally:
            await database.dispose()

    if not postgres_available():
        pytest.skip("PostgreSQL is not running")
    setting, failure, took = asyncio.run(run())

    assert setting == "500ms"
    assert database_outage(failure) is not None
    assert "QueryCanceledError" in describe_outage(database_outage(failure) or failure)
    assert took < 4
