"""Telling a database outage from a bug, and describing it without SQL or parameters.

An outage is the database being unreachable, slow or refusing work: connection
refused or reset, a connect, checkout or statement timeout, a server shutting
down, too many clients, SQLite busy or unable to open its file. The server
answers those with 503 and the CLI with a one-line error; anything else is a
bug and stays one.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from types import TracebackType

from sqlalchemy import exc as sa_exc

__all__ = ["database_outage", "describe_outage"]

#: SQLSTATE classes of a database that cannot serve now (PostgreSQL appendix A):
#: 08 connection exception, 53 insufficient resources, 57 operator intervention
#: (57014 is a statement_timeout), 58 system error; and, at connect, 28 (the
#: login was refused) and 3D (no such database): nothing a caller did, and
#: nothing the server can serve until an operator acts.
_OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58", "28", "3D"})
#: SQLSTATEs outside those classes that are still "try again shortly".
_OUTAGE_SQLSTATES = frozenset({"55P03"})  # lock_not_available (lock_timeout)
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EPIPE,
        errno.EADDRNOTAVAIL,
    }
)
#: SQLite's primary result codes that mean "not now": BUSY, LOCKED (the lock was
#: not freed within busy_timeout), IOERR, FULL, CANTOPEN (the file or its folder
#: is gone or unreadable), PROTOCOL. An error like "no such table" is a bug.
_SQLITE_OUTAGE_CODES = frozenset({5, 6, 10, 13, 14, 15})
#: Where a bare OSError or TimeoutError must come from to count as the database's.
_DATABASE_MODULES = ("sqlalchemy.", "asyncpg.", "aiosqlite.", "authmesh.store.")
_MAX_MESSAGE = 160


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then its causes and contexts, then the members of exception groups."""
    seen: set[int] = set()
    pending = [exc]
    while pending and len(seen) < 20:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)


def _raised_in_database_code(tb: TracebackType | None) -> bool:
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.startswith(_DATABASE_MODULES):
            return True
        tb = tb.tb_next
    return False


def _sqlite_code(exc: BaseException | None) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection freed in time
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlite_code = _sqlite_code(exc.orig)
        if sqlite_code is not None:
            return sqlite_code in _SQLITE_OUTAGE_CODES
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
        return False  # a driver error behind it is judged on its own (its SQLSTATE)
    sqlite_code = _sqlite_code(exc)
    if sqlite_code is not None:  # raised outside SQLAlchemy (the BEGIN IMMEDIATE hook)
        return sqlite_code in _SQLITE_OUTAGE_CODES
    if isinstance(exc, sa_exc.DisconnectionError):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and (
        sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES or sqlstate in _OUTAGE_SQLSTATES
    ):
        return True
    module = type(exc).__module__
    if module.startswith("asyncpg") and type(exc).__name__ in (
        "ConnectionDoesNotExistError",
        "InterfaceError",
        "InternalClientError",
    ):
        return True
    if isinstance(exc, TimeoutError | ConnectionError | socket.gaierror) or (
        isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS
    ):
        return _raised_in_database_code(exc.__traceback__)
    # asyncpg's "Multiple exceptions: [Errno 111] Connect call failed …" has no errno.
    if type(exc) is OSError and exc.errno is None and "Connect call failed" in str(exc):
        return _raised_in_database_code(exc.__traceback__)
    return False


def database_outage(exc: BaseException) -> BaseException | None:
    """The exception in ``exc``'s chain that shows the database is out of reach, if any."""
    for linked in _chain(exc):
        if _is_outage(linked):
            return linked
    return None


def _first_line(text: str) -> str:
    # SQLAlchemy appends "(Background on this error at: …)" and, on DBAPIError,
    # the SQL and its parameters: neither goes in a log line.
    text = text.split("\n", 1)[0].split(" (Background on this error", 1)[0].strip()
    return text[:_MAX_MESSAGE]


def describe_outage(exc: BaseException) -> str:
    """``Type / DriverType: short message`` of an outage: never SQL, parameters or a traceback."""
    # The driver's own exception says what happened; SQLAlchemy's text would add
    # the statement and its parameters.
    root = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    for _ in range(10):
        if root.__cause__ is None:
            break
        root = root.__cause__
    label = " / ".join(dict.fromkeys((type(exc).__name__, type(root).__name__)))
    message = "" if isinstance(root, sa_exc.StatementError) else str(root)
    silent = "timed out" if isinstance(root, TimeoutError) else "no message"
    return f"{label}: {_first_line(message) or silent}"
