"""Database connection: engine, sessions, and Alembic migrations run in-process."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_only

from authmesh.errors import ConfigError
from authmesh.store.private_files import create_private_file, private_dir

__all__ = ["Database", "default_sqlite_url", "latest_revision", "normalize_url"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def default_sqlite_url(data_dir: str | os.PathLike[str]) -> str:
    """The embedded default: a SQLite file in the data folder."""
    path = Path(data_dir).resolve() / "authmesh.db"
    return f"sqlite+aiosqlite:///{path}"


def normalize_url(url: str) -> str:
    """Pick the async driver for plain ``postgresql://`` and ``sqlite://`` URLs.

    Raises:
        ConfigError: the URL is not a supported database URL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"not a database URL: {url!r}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite" and parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    if parsed.drivername not in ("postgresql+asyncpg", "sqlite+aiosqlite"):
        raise ConfigError(
            f"unsupported database {parsed.drivername!r}: use sqlite+aiosqlite:///path "
            "or postgresql+asyncpg://user@host/db"
        )
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, say when a transaction begins (see _sqlite_begin).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    # WAL lets readers run beside the one writer; busy_timeout makes writers of
    # several processes wait their turn instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front: a deferred transaction that reads
    # and then writes fails with SQLITE_BUSY when another connection committed
    # in between, which busy_timeout cannot wait out.
    # Straight to aiosqlite, one hand-off to its thread: through exec_driver_sql
    # it would be four (cursor, execute, fetch, close) on every transaction.
    driver = conn.connection.driver_connection
    assert driver is not None
    await_only(driver.execute("BEGIN IMMEDIATE"))


def _ping(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    # pool_pre_ping's job, in one round trip instead of three: SQLAlchemy's asyncpg
    # ping wraps its query in BEGIN and ROLLBACK (for PgBouncer's transaction mode,
    # which authmesh does not use). A connection the server dropped (a restart)
    # fails here, and the pool retries the checkout with a fresh connection.
    try:
        await_only(dbapi_conn.driver_connection.fetchrow(";"))
    except Exception as exc:
        raise DisconnectionError("the pooled connection no longer answers") from exc


class Database:
    """An async engine and its session factory."""

    def __init__(self, url: str, *, schema: str | None = None, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.schema = schema
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            db_path = make_url(self.url).database
            if db_path and db_path != ":memory:":
                # Made here with owner-only modes; SQLite gives its -wal and -shm
                # files the database file's mode.
                create_private_file(private_dir(Path(db_path).parent) / Path(db_path).name)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=20)
            if schema:
                kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        else:
            event.listen(self.engine.sync_engine.pool, "checkout", _ping)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def upgrade(self) -> None:
        """Apply every Alembic migration up to head (idempotent)."""
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                # Two processes starting at once must not both run the migrations.
                await conn.execute(text("SELECT pg_advisory_xact_lock(427001)"))
            await conn.run_sync(self._run_upgrade)

    def _run_upgrade(self, connection: Connection) -> None:
        command.upgrade(self._alembic_config(connection), "head")

    def _alembic_config(self, connection: Connection | None = None) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.attributes["connection"] = connection
        return cfg

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def latest_revision() -> str:
    """The newest migration's revision: what ``upgrade`` brings a database to."""
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head
