"""Row objects read with Core statements, built without the ORM's attribute events.

The hot paths read clients, users and sessions with Core statements and hand
back the mapped classes, detached. Building one through its constructor sets
each column through SQLAlchemy's instrumentation (an event per attribute), which
costs more than reading the row; these objects are never added to a session
or changed, so their values go straight into the instance's dictionary. Reads
of their attributes work as on any loaded row.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, TypeAlias, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import ClassManager, configure_mappers
from sqlalchemy.orm.instrumentation import manager_of_class

from authmesh.store.models import Base
from authmesh.store.sqlite_statements import DirectStatements

__all__ = ["Statements", "detached"]

#: What runs a store function written in Core statements only: an ORM session, or
#: what :meth:`authmesh.store.db.Database.core` gives the hottest requests (a bare
#: connection; on SQLite, the driver's connection itself).
Statements: TypeAlias = AsyncSession | AsyncConnection | DirectStatements

_Row = TypeVar("_Row", bound=Base)


@cache
def _manager(cls: type[Base]) -> ClassManager[Any]:
    configure_mappers()  # attribute reads need the mappers set up, as a first query does
    return manager_of_class(cls)


def detached(cls: type[_Row], values: Mapping[str, Any]) -> _Row:
    """A transient ``cls`` holding ``values`` (every column the caller reads).

    Change rows through the store's functions, never through such an object: it
    is in no session, and nothing tracks its attributes.
    """
    row: _Row = _manager(cls).new_instance()
    row.__dict__.update(values)
    return row
