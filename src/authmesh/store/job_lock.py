"""Which replica runs a periodic job: the holder of a PostgreSQL advisory lock.

Replicas sharing one PostgreSQL database each try ``pg_try_advisory_lock`` on a
connection of their own; the one that gets it keeps that connection open, and
with it the lock, for as long as it lives. When its process dies or its
connection drops, PostgreSQL releases the lock and the next replica to try
takes it over. On SQLite (one machine, one writer at a time) every process
simply runs the job.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from sqlalchemy.engine import make_url

from authmesh.store.db import Database

__all__ = ["JobLock", "lock_key"]

log = logging.getLogger(__name__)
_CONNECT_TIMEOUT = 10.0


def lock_key(job: str, schema: str | None) -> int:
    """The advisory-lock key of ``job`` for one deployment (its schema).

    Advisory locks are per database, not per schema: two deployments sharing a
    database in different schemas each need their own key, or only one of them
    would ever run the job.
    """
    digest = hashlib.sha256(f"authmesh:{job}:{schema or ''}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class JobLock:
    """Leadership of one job among the processes sharing a database.

    Args:
        db: the shared database.
        job: the job's name (the lock key is derived from it and the schema).
    """

    def __init__(self, db: Database, job: str) -> None:
        self._db = db
        self.key = lock_key(job, db.schema)
        self._conn: Any = None

    @property
    def held(self) -> bool:
        """Whether this process held the lock when last asked."""
        return self._db.is_sqlite or self._conn is not None

    async def acquire(self) -> bool:
        """Take the lock, or check it is still held; whether this process holds it."""
        if self._db.is_sqlite:
            return True
        if self._conn is not None:
            try:
                await self._conn.fetchval("SELECT 1")
                return True
            except Exception:
                # The connection is gone, and the lock with it: another replica may
                # hold it by now, so ask again like everyone else.
                log.warning("lost the connection holding the retention lock")
                await self._drop()
        import asyncpg

        dsn = make_url(self._db.url).set(drivername="postgresql").render_as_string(False)
        conn = await asyncpg.connect(dsn, timeout=_CONNECT_TIMEOUT)
        try:
            got = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key))
        except BaseException:
            await conn.close()
            raise
        if got:
            self._conn = conn
        else:
            await conn.close()
        return got

    async def release(self) -> None:
        """Give the lock up (closing its connection releases it on the server)."""
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close(timeout=_CONNECT_TIMEOUT)
            except Exception:
                conn.terminate()  # the server ends the session, and the lock with it
