"""Database connection: engine, sessions, and Alembic migrations run in-process.

Every wait on the database is bounded (:class:`DatabaseTimeouts`), so an outage
turns into an error within seconds instead of a hung request, and a connection
that failed is thrown away, so the pool recovers by itself once the database is
back.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool, PoolProxiedConnection
from sqlalchemy.util import await_only

from authmesh.errors import ConfigError
from authmesh.store.outages import database_outage
from authmesh.store.private_files import create_private_file, private_dir
from authmesh.store.sqlite_driver import OneHopConnection, connector, inline_statements
from authmesh.store.sqlite_statements import DirectStatements, StatementPlans, direct_statements

__all__ = [
    "Database",
    "DatabaseTimeouts",
    "default_sqlite_url",
    "latest_revision",
    "normalize_url",
]

_MIGRATIONS = Path(__file__).parent / "migrations"
#: The client-side bound on a statement is the server's statement_timeout plus
#: this: a slow statement is cancelled by PostgreSQL (the connection stays
#: usable), and the client's bound only fires when the network is silent.
_CLIENT_MARGIN = 1.0


@dataclass(frozen=True, slots=True)
class DatabaseTimeouts:
    """How long anything may wait on the database, in seconds.

    Attributes:
        connect: opening a connection (TCP, TLS, start-up, authentication).
        checkout: waiting for a free pooled connection when all are in use.
        statement: one statement on PostgreSQL (``statement_timeout``); on SQLite,
            how long a writer waits for the lock (``busy_timeout``).
    """

    connect: float = 3.0
    checkout: float = 3.0
    statement: float = 5.0

    @property
    def ping(self) -> float:
        """The bound on the liveness check of a pooled connection at checkout.

        A healthy answer takes milliseconds; a connection that stays silent this
        long is replaced, which costs one connect, not a failed request.
        """
        return min(1.0, self.connect)


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


def _sqlite_pragmas(busy_ms: int) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, say when a transaction begins (see _sqlite_begin).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        # WAL lets readers run beside the one writer; busy_timeout makes writers of
        # several processes wait their turn instead of failing with "database is locked".
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def _sqlite_do_begin(dbapi_connection: PoolProxiedConnection) -> None:
    """The SQLite dialect's ``do_begin`` (SQLAlchemy's is a no-op there).

    IMMEDIATE takes the write lock up front: a deferred transaction that reads and
    then writes fails with SQLITE_BUSY when another connection committed in
    between, which busy_timeout cannot wait out. Sent with the transaction's first
    statement, in the same hand-off to aiosqlite's thread. Not a ``begin`` event
    listener, SQLAlchemy's recipe: with any connection event listened for, SQLAlchemy
    dispatches events around every statement of every connection of the engine.
    """
    driver = dbapi_connection.driver_connection
    assert isinstance(driver, OneHopConnection)
    if not driver.no_transaction:
        driver.begin_lazily("BEGIN IMMEDIATE")


class Database:
    """An async engine and its session factory.

    Args:
        url: a SQLAlchemy URL (``sqlite://``, ``postgresql://`` pick the async driver).
        schema: the PostgreSQL schema (``search_path``) of authmesh's tables.
        timeouts: the bounds on every wait for the database.
        create: whether a SQLite file that does not exist may be created; without
            it a missing file is a :class:`~authmesh.errors.ConfigError`, so a
            mistyped path never silently starts an empty database.

    Raises:
        ConfigError: the URL is not supported, or (``create=False``) the SQLite
            file does not exist.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        echo: bool = False,
        timeouts: DatabaseTimeouts | None = None,
        create: bool = True,
    ) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.schema = schema
        self.timeouts = timeouts or DatabaseTimeouts()
        #: What the last use of the database showed: False after an outage, True
        #: after a connection answered. For the cheap liveness check.
        self.reachable = True
        statement = self.timeouts.statement
        # Statements and parameters never reach an error message, so never a log either.
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.is_sqlite:
            db_path = make_url(self.url).database
            if db_path and db_path != ":memory:" and not db_path.startswith("file:"):
                if create:
                    # Made here with owner-only modes; SQLite gives its -wal and -shm
                    # files the database file's mode.
                    path = Path(db_path)
                    create_private_file(private_dir(path.parent) / path.name)
                elif not Path(db_path).is_file():
                    raise ConfigError(
                        f"no authmesh database at {db_path}: check --data-dir or "
                        "--database-url, or create it with 'authmesh db upgrade'"
                    )
            # aiosqlite behind a cursor that costs one hand-off to its thread a statement.
            parsed = make_url(self.url)
            url_args, url_kwargs = parsed.get_dialect()().create_connect_args(parsed)
            kwargs["async_creator"] = connector(url_args, {**url_kwargs, "timeout": statement})
        else:
            kwargs.update(
                pool_size=10,
                max_overflow=20,
                pool_timeout=self.timeouts.checkout,
                connect_args=self._pg_connect_args(bounded=True),
            )
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        sync_engine = self.engine.sync_engine
        if self.is_sqlite:
            event.listen(sync_engine, "connect", _sqlite_pragmas(round(statement * 1000)))
            sync_engine.dialect.do_begin = _sqlite_do_begin  # type: ignore[method-assign]
            event.listen(sync_engine.pool, "checkout", self._answered)
        else:
            event.listen(sync_engine.pool, "checkout", self._ping)
        event.listen(sync_engine, "handle_error", self._on_error)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._plans = StatementPlans(sync_engine.dialect)
        #: Whether :meth:`core` runs SQLite statements on the driver itself. Off while the
        #: engine is traced, so that every statement still gets its span.
        self.direct_sqlite = self.is_sqlite
        # The same pool, its connections out of any transaction (see autocommit()): on
        # PostgreSQL by the isolation level, on SQLite by the driver sending no BEGIN.
        self._autocommit_engine = (
            self.engine
            if self.is_sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    def _pg_connect_args(self, *, bounded: bool) -> dict[str, Any]:
        """asyncpg's arguments; ``bounded`` adds the statement timeouts."""
        server_settings = {"search_path": self.schema} if self.schema else {}
        args: dict[str, Any] = {"timeout": self.timeouts.connect}
        if bounded:
            statement = self.timeouts.statement
            server_settings["statement_timeout"] = str(round(statement * 1000))
            args["command_timeout"] = statement + _CLIENT_MARGIN
        return {**args, "server_settings": server_settings}

    def _answered(self, _dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        self.reachable = True

    def _ping(self, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        # pool_pre_ping's job, in one round trip instead of three: SQLAlchemy's asyncpg
        # ping wraps its query in BEGIN and ROLLBACK (for PgBouncer's transaction mode,
        # which authmesh does not use). A connection the server dropped (a restart)
        # fails here, and the pool retries the checkout with a fresh connection.
        driver = dbapi_conn.driver_connection
        try:
            await_only(driver.fetchrow(";", timeout=self.timeouts.ping))
        except Exception as exc:
            self.reachable = False
            # Abort at once: the pool's graceful close would wait on a silent network.
            driver.terminate()
            raise DisconnectionError("the pooled connection no longer answers") from exc
        self.reachable = True

    def note_outage(self) -> None:
        """Record that a request met a database outage (for the liveness report)."""
        self.reachable = False

    def _on_error(self, context: ExceptionContext) -> None:
        """Throw away a connection that timed out or lost its network.

        SQLAlchemy knows a closed asyncpg connection is gone, but not one whose
        statement timed out on the client: that connection still waits for its
        cancellation, and handing it back to the pool would stall the next
        request. Marked as a disconnect, it is invalidated, and so is the rest of
        the pool (connections made before it), which lets the server recover
        without a restart once the database is back.
        """
        if database_outage(context.original_exception) is None:
            return
        self.reachable = False
        if isinstance(context.original_exception, TimeoutError | OSError):
            context.is_disconnect = True
            connection = context.connection
            if connection is not None and not connection.invalidated:
                driver = connection.connection.driver_connection
                terminate = getattr(driver, "terminate", None)
                if terminate is not None and not self.is_sqlite:
                    terminate()

    @asynccontextmanager
    async def transaction(self, *, short: bool = False) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error.

        ``short``: only a few small statements (a request's), which on SQLite may then
        run in the event loop's thread (see :func:`.sqlite_driver.inline_statements`).
        """
        async with self.sessions() as session, session.begin():
            with self._statements(short):
                yield session

    @asynccontextmanager
    async def autocommit(self, *, short: bool = False) -> AsyncIterator[AsyncSession]:
        """A session whose statements each commit on their own, with no transaction
        around them: for reads, and a write that needs no other statement with it.

        It spares a transaction's BEGIN and COMMIT (two round trips on PostgreSQL;
        on SQLite, the write lock a transaction takes at once). Each statement sees
        what was committed when it runs, as in a READ COMMITTED transaction.
        ``short`` as for :meth:`transaction`.
        """
        async with (
            self._autocommit_connection() as connection,
            AsyncSession(bind=connection, expire_on_commit=False) as session,
        ):
            with self._statements(short):
                yield session

    @asynccontextmanager
    async def core(self, *, transaction: bool) -> AsyncIterator[AsyncConnection | DirectStatements]:
        """A request's few Core statements on one pooled connection, with no ORM session.

        For the hottest requests, whose statements are all Core (a :data:`Statements`
        in the ``store`` functions they call): the session's own bookkeeping (its
        transaction object, identity map, connection lookup per statement and close)
        costs as much there as the statements; on SQLite, so does SQLAlchemy's
        execution of each (see :mod:`.sqlite_statements`). ``transaction``: one
        transaction, committed on success and rolled back on error, as
        :meth:`transaction`; otherwise each statement commits on its own, as
        :meth:`autocommit`. Short either way, as ``short=True`` there.
        """
        if self.direct_sqlite:
            async with direct_statements(
                self.engine, self._plans, transaction=transaction
            ) as statements:
                yield statements
            return
        connections = self.engine.connect() if transaction else self._autocommit_connection()
        async with connections as connection:
            # The commit outside inline_statements, as a session's: see sqlite_driver.
            async with connection.begin() if transaction else nullcontext():
                with self._statements(True):
                    yield connection

    @asynccontextmanager
    async def _autocommit_connection(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection on which each statement commits on its own."""
        async with self._autocommit_engine.connect() as connection:
            if not self.is_sqlite:
                yield connection
                return
            # Checked out already (connect() does): its driver is at hand, no await.
            driver = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
            assert isinstance(driver, OneHopConnection)
            driver.no_transaction = True
            try:
                yield connection
            finally:
                driver.no_transaction = False

    def _statements(self, short: bool) -> AbstractContextManager[None]:
        return inline_statements() if short and self.is_sqlite else nullcontext()

    async def has_tables(self) -> bool:
        """Whether migrations ever ran here (the Alembic version table exists)."""
        async with self.engine.connect() as conn:
            return bool(await conn.run_sync(lambda c: inspect(c).has_table("alembic_version")))

    async def upgrade(self) -> None:
        """Apply every Alembic migration up to head (idempotent)."""
        if self.is_sqlite:
            async with self.engine.begin() as conn:
                await conn.run_sync(self._run_upgrade)
            return
        # A migration may rewrite a large table, and a second process starting at
        # once waits for the first one's: no statement timeout here, only the
        # connect timeout, on a connection of its own.
        engine = create_async_engine(
            self.url,
            hide_parameters=True,
            poolclass=NullPool,
            connect_args=self._pg_connect_args(bounded=False),
        )
        try:
            async with engine.begin() as conn:
                # Two processes starting at once must not both run the migrations.
                await conn.execute(text("SELECT pg_advisory_xact_lock(427001)"))
                await conn.run_sync(self._run_upgrade)
        finally:
            await engine.dispose()

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
