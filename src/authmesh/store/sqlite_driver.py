"""aiosqlite connections whose statements cost one hand-off to the driver's thread, not four.

aiosqlite runs every call on the sqlite3 connection in a thread of its own,
and SQLAlchemy's adapter makes four such calls per statement: open a cursor,
execute, fetch the rows, close the cursor. Each hand-off wakes the event loop
from the other thread and costs more CPU than a small statement itself. The
cursor here does the four in one call and keeps the rows, the description,
the row count and the last row id. A transaction's ``BEGIN`` goes with its
first statement, and a commit or rollback with nothing to end is skipped (the
pool rolls back every connection it takes back, even after a commit); the
rest is aiosqlite's own.

Within :func:`inline_statements` (short statements of a request), a statement
that cannot wait runs in the event loop's thread, with no hand-off at all: one
inside a transaction that holds the write lock (``BEGIN IMMEDIATE``), or one
that finds its lock free at once (tried with a zero busy timeout). A statement
that would wait for another writer goes to the driver's thread and waits there,
as outside the block; so do commits (a WAL checkpoint may write to disk).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import aiosqlite

__all__ = ["OneHopConnection", "connector", "inline_statements"]

_Rows = list[Any]
_Call = Callable[[sqlite3.Cursor], object]
_INLINE: ContextVar[bool] = ContextVar("authmesh_sqlite_inline", default=False)
_SQLITE_BUSY = 5


@contextmanager
def inline_statements() -> Iterator[None]:
    """Let this task's statements run in the event loop's thread when they cannot wait.

    For a request's few short statements: each hand-off to the driver's thread costs
    more CPU than such a statement, and a long one would hold up the event loop.
    """
    token = _INLINE.set(True)
    try:
        yield
    finally:
        _INLINE.reset(token)


class _OneHopCursor:
    """The subset of :class:`aiosqlite.Cursor` SQLAlchemy's adapter uses, one hand-off a
    statement. Rows are fetched at execute time (SQLAlchemy fetches them all then too)."""

    def __init__(self, conn: OneHopConnection) -> None:
        self._conn = conn
        self._rows: _Rows = []
        self._next = 0
        self.description: Sequence[Any] | None = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    async def __aenter__(self) -> _OneHopCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _run(self, begin: str | None, call: _Call) -> None:
        """In the driver's thread: ``begin`` if the transaction waits for it, then ``call``
        on a fresh sqlite3 cursor; keep the results."""
        cursor = self._conn._conn.cursor()
        try:
            if begin is not None:
                cursor.execute(begin)
                self._conn.holds_write_lock = "IMMEDIATE" in begin
            call(cursor)
            self.description = cursor.description
            self.rows = cursor.fetchall() if cursor.description else []
            self.rowcount = cursor.rowcount
            self.lastrowid = cursor.lastrowid
        finally:
            cursor.close()

    @property
    def rows(self) -> _Rows:
        """The rows not fetched yet."""
        return self._rows[self._next :]

    @rows.setter
    def rows(self, rows: _Rows) -> None:
        self._rows, self._next = rows, 0

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> _OneHopCursor:
        """Execute one statement and fetch its rows, in one hand-off."""
        params: Any = () if parameters is None else parameters
        await self._send(lambda c: c.execute(sql, params))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> _OneHopCursor:
        """Execute one statement for each parameter set, in one hand-off."""
        sets: Any = parameters
        await self._send(lambda c: c.executemany(sql, sets))
        return self

    async def _send(self, call: _Call) -> None:
        begin = self._conn.take_begin()
        if _INLINE.get():
            ran, begin = self._conn.run_inline(self._run, begin, call)
            if ran:
                return
        await self._conn.call(self._run, begin, call)

    async def fetchone(self) -> Any | None:
        """The next row, or ``None``."""
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    async def fetchmany(self, size: int | None = None) -> _Rows:
        """Up to ``size`` (default ``arraysize``) more rows."""
        end = self._next + (self.arraysize if size is None else size)
        chunk = self._rows[self._next : end]
        self._next += len(chunk)
        return chunk

    async def fetchall(self) -> _Rows:
        """Every row not fetched yet."""
        rest = self.rows
        self._next = len(self._rows)
        return rest

    async def close(self) -> None:
        """Drop the rows (the sqlite3 cursor is closed already)."""
        self._rows, self._next = [], 0

    async def setinputsizes(self, *sizes: Any) -> None:
        """A no-op, as in sqlite3."""


class OneHopConnection(aiosqlite.Connection):
    """An :class:`aiosqlite.Connection` whose cursors cost one hand-off a statement.

    Statements go through :meth:`cursor` (as SQLAlchemy sends them): aiosqlite's
    own ``execute`` helpers do not send a ``BEGIN`` left by :meth:`begin_lazily`.
    """

    _begin: str | None = None
    #: While true, a transaction SQLAlchemy begins sends no ``BEGIN``: each statement
    #: commits on its own (``Database.autocommit``).
    no_transaction = False
    #: Whether this connection's open transaction began with ``BEGIN IMMEDIATE``.
    holds_write_lock = False
    #: The busy timeout the connection was opened with, in milliseconds.
    busy_ms = 5000

    def cursor(self) -> _OneHopCursor:  # type: ignore[override]
        """A cursor; ``async with`` and ``await`` give it back at once, with no hand-off."""
        return _OneHopCursor(self)

    async def call(self, fn: Callable[..., object], *args: object) -> Any:
        """``fn(*args)`` in the driver's thread (aiosqlite's own hand-off)."""
        return await self._execute(fn, *args)  # type: ignore[no-untyped-call]

    def begin_lazily(self, sql: str) -> None:
        """Open the transaction with ``sql`` (a ``BEGIN``) in the hand-off of its first
        statement: its errors, a busy database's included, are that statement's."""
        self._begin = sql

    def take_begin(self) -> str | None:
        """The ``BEGIN`` the next statement must send first, if any (it is sent once)."""
        begin, self._begin = self._begin, None
        return begin

    def run_inline(
        self, run: Callable[[str | None, _Call], None], begin: str | None, call: _Call
    ) -> tuple[bool, str | None]:
        """``run(begin, call)`` in this thread if it need not wait for a lock: whether it
        ran, and the ``BEGIN`` still to send when it did not.

        Raises:
            sqlite3.Error: the statement failed for any reason but a busy lock.
        """
        conn = self._connection
        if conn is None:
            return False, begin
        if begin is None and conn.in_transaction and self.holds_write_lock:
            run(None, call)  # nothing left to wait for: the transaction has the lock
            return True, None
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            run(begin, call)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != _SQLITE_BUSY:
                raise
            # Another writer has the lock: wait for it in the driver's thread. A BEGIN
            # that went through is not sent again.
            return False, None if conn.in_transaction else begin
        finally:
            conn.execute(f"PRAGMA busy_timeout = {self.busy_ms}")
        return True, None

    def _in_transaction(self) -> bool:
        # Read in the event loop's thread (the connection is opened with
        # check_same_thread off): SQLAlchemy sends one call at a time on a connection,
        # and SQLite's own mutex guards the flag against a call still running.
        conn = self._connection
        return conn is not None and conn.in_transaction

    async def commit(self) -> None:
        """Commit, unless no statement began a transaction (no hand-off then)."""
        self._begin = None
        self.holds_write_lock = False
        if self._in_transaction():
            await super().commit()

    async def rollback(self) -> None:
        """Roll back, unless there is no transaction to end (no hand-off then)."""
        self._begin = None
        self.holds_write_lock = False
        if self._in_transaction():
            await super().rollback()


def connector(
    args: Sequence[Any], kwargs: dict[str, Any]
) -> Callable[[], Awaitable[OneHopConnection]]:
    """An ``async_creator`` for SQLAlchemy: ``sqlite3.connect(*args, **kwargs)`` behind a
    :class:`OneHopConnection` whose thread does not keep the process alive."""

    # Every call runs in the driver's thread, but for reading whether a transaction
    # is open, which is safe from any thread.
    options = {**kwargs, "check_same_thread": False}

    async def connect() -> OneHopConnection:
        conn = OneHopConnection(lambda: sqlite3.connect(*args, **options), 64)
        conn.busy_ms = round(1000 * float(options.get("timeout", 5.0)))
        thread: Any = getattr(conn, "_thread", conn)  # aiosqlite < 0.22: a Thread itself
        thread.daemon = True
        await conn  # starts the thread and opens the sqlite3 connection in it
        return conn

    return connect
