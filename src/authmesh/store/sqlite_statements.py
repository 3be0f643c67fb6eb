"""Core statements run on the SQLite driver itself, for the requests that run most.

SQLAlchemy's async execution of one small statement costs several times what
SQLite spends on it: a greenlet to run it in, a compiled-cache lookup, an
execution context, a result object with its row processors, and as much again
to check a connection out and back in. On the browser sign-in paths that run
most (an authorization with the single-sign-on cookie, a code exchange) that
was the largest share of the server's CPU (the ``signin`` part of
``bench/RESULTS.md``).

What SQLAlchemy does for a statement is kept: it compiles each statement once
for the engine's dialect, the columns' own types convert the parameters
(``bind_processor``) and the results (``result_processor``), and its pool lends
the connection (with its events: the PRAGMAs of a new one, the liveness note).
Only the machinery around one execution is left out: the statement runs on
:class:`~.sqlite_driver.OneHopConnection`'s cursor, with its lazy ``BEGIN`` and
its inline execution.

A statement whose execution would need more (a column default SQLAlchemy
computes in Python, an expanding ``IN``) is refused with ``TypeError``: run it
through SQLAlchemy.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.util import greenlet_spawn

from authmesh.store.sqlite_driver import OneHopConnection, inline_statements

__all__ = ["DirectResult", "DirectStatements", "StatementPlans", "direct_statements"]

_Processor = Callable[[Any], Any] | None
#: A bind parameter's value in the statement itself, when the statement has none.
_REQUIRED = object()


@dataclass(frozen=True, slots=True)
class _Plan:
    """A statement compiled for the dialect, with its parameters' and columns' processors."""

    #: Held so that the statement's ``id`` (the cache key) is never reused.
    statement: object
    sql: str
    #: Each positional parameter: its bind name, its processor, and its value in the
    #: statement itself (a literal compared against) for when none is given, or
    #: ``_REQUIRED``.
    binds: tuple[tuple[str, _Processor, Any], ...]
    columns: tuple[_Processor, ...]


class StatementPlans:
    """Compiled statements by statement and parameter names, for one dialect.

    Bounded, oldest first out: the statements sent here are module constants,
    but one built per call must not grow it without end.
    """

    def __init__(self, dialect: Dialect, size: int = 256) -> None:
        self._dialect = dialect
        self._plans: OrderedDict[tuple[int, tuple[str, ...]], _Plan] = OrderedDict()
        self._size = size

    def plan(self, statement: object, names: tuple[str, ...]) -> _Plan:
        """The plan of ``statement`` executed with parameters ``names``."""
        key = (id(statement), names)
        found = self._plans.get(key)
        if found is None or found.statement is not statement:
            found = self._plans[key] = self._compile(statement, names)
            if len(self._plans) > self._size:
                self._plans.popitem(last=False)
        return found

    def _compile(self, statement: object, names: tuple[str, ...]) -> _Plan:
        dialect = self._dialect
        if not isinstance(statement, Select | UpdateBase):
            raise TypeError(f"not a Core statement: {type(statement).__name__}")
        # An INSERT or UPDATE sets the columns it is given values for, as SQLAlchemy's.
        keys = list(names) if isinstance(statement, UpdateBase) else None
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
            raise TypeError("the statement has column defaults computed in Python")
        binds = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            if bind.expanding:
                raise TypeError("the statement has an expanding IN parameter")
            impl = bind.type.dialect_impl(dialect)
            literal = _REQUIRED if bind.required else bind.effective_value
            binds.append((name, impl.bind_processor(dialect), literal))
        columns: tuple[_Processor, ...] = ()
        if isinstance(statement, Select):
            columns = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in statement.selected_columns
            )
        return _Plan(statement, compiled.string, tuple(binds), columns)


class DirectResult:
    """What the store functions read of a statement's result: rows (tuples), row count."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def all(self) -> list[tuple[Any, ...]]:
        return self._rows

    def first(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalars(self) -> DirectScalars:
        return DirectScalars([row[0] for row in self._rows])


class DirectScalars:
    """The first column of every row."""

    __slots__ = ("_values",)

    def __init__(self, values: list[Any]) -> None:
        self._values = values

    def all(self) -> list[Any]:
        return self._values


class DirectStatements:
    """``execute(statement, parameters)`` on one SQLite driver connection, as
    :class:`~sqlalchemy.ext.asyncio.AsyncConnection` offers it to the store functions."""

    __slots__ = ("_driver", "_plans")

    def __init__(self, driver: OneHopConnection, plans: StatementPlans) -> None:
        self._driver = driver
        self._plans = plans

    async def execute(
        self, statement: object, parameters: Mapping[str, Any] | None = None
    ) -> DirectResult:
        """Run one statement with one set of named parameters.

        Raises:
            TypeError: the statement needs SQLAlchemy's execution (see the module).
            sqlite3.Error: as the driver raises it.
        """
        given = parameters or {}
        plan = self._plans.plan(statement, tuple(given))
        values = _bound(plan.binds, given)
        cursor = self._driver.cursor()
        await cursor.execute(plan.sql, values)
        rows = await cursor.fetchall()
        if plan.columns and rows:
            rows = _processed(plan.columns, rows)
        return DirectResult(rows, cursor.rowcount)


def _bound(binds: Sequence[tuple[str, _Processor, Any]], given: Mapping[str, Any]) -> list[Any]:
    # As SQLAlchemy: every value through its type's processor, None included (a JSON
    # column stores None as JSON null).
    values = []
    for name, process, literal in binds:
        value = given[name] if name in given else literal
        if value is _REQUIRED:
            raise ArgumentError(f"a value is required for bind parameter {name!r}")
        values.append(value if process is None else process(value))
    return values


def _processed(columns: Sequence[_Processor], rows: list[Any]) -> list[tuple[Any, ...]]:
    return [
        tuple(v if p is None else p(v) for p, v in zip(columns, row, strict=True)) for row in rows
    ]


@asynccontextmanager
async def direct_statements(
    engine: AsyncEngine, plans: StatementPlans, *, transaction: bool
) -> AsyncIterator[DirectStatements]:
    """Statements on a connection of ``engine``'s pool, run inline where they need not wait.

    ``transaction``: in one ``BEGIN IMMEDIATE`` transaction, committed when the block
    ends and rolled back when it raises; otherwise each statement commits on its own.
    """
    pooled = await engine.raw_connection()
    try:
        driver = pooled.driver_connection
        assert isinstance(driver, OneHopConnection)
        if transaction:
            driver.begin_lazily("BEGIN IMMEDIATE")
        try:
            with inline_statements():
                yield DirectStatements(driver, plans)
        except BaseException:
            await driver.rollback()
            raise
        # Outside inline_statements: a commit goes to the driver's thread (see there).
        await driver.commit()
    finally:
        # Back to the pool, whose reset (a rollback) needs SQLAlchemy's greenlet; with
        # no transaction left open it sends nothing.
        await greenlet_spawn(pooled.close)
