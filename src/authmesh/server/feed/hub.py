"""Waking revocation-feed streams when an event is written, in every process.

One process: an in-memory condition. Several processes on PostgreSQL: LISTEN/
NOTIFY on ``authmesh_revocations``. With ``AUTHMESH_REDIS_URL``: Redis pub/sub
instead. On SQLite (one machine) a slow poll of the log is the safety net for a
second process. Streams then read the durable log, so a lost wake-up delays an
event by at most one heartbeat, never drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.engine import make_url

from authmesh.jose.policy import Clock
from authmesh.revocation import RevocationEvent
from authmesh.server.config import ServerSettings
from authmesh.server.feed.board import FollowerBoard
from authmesh.server.feed.followers import FollowerJSON, FollowerRegistry
from authmesh.server.feed.tail import FeedTail
from authmesh.server.feed.wakeups import Wakeups
from authmesh.server.redis_client import short_timeout_client
from authmesh.store import revocations
from authmesh.store.db import Database
from authmesh.store.outages import database_outage, describe_outage

__all__ = ["CHANNEL", "FeedHub"]

CHANNEL = "authmesh_revocations"
log = logging.getLogger(__name__)


class FeedHub:
    """The newest cursor this process knows of, and a way to wait for a newer one."""

    def __init__(self, db: Database, *, settings: ServerSettings, clock: Clock) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        #: The streams waiting for a newer cursor (or their heartbeat).
        self._wakeups = Wakeups()
        self.latest = 0
        #: Set when the server shuts down: open feed streams end, so a graceful
        #: shutdown does not wait forever on subscribers that never hang up.
        self.draining = False
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: Any = None
        #: Publishes wake-ups with short timeouts: a hung Redis must not hold the
        #: request that committed a revocation (the listener keeps its own client).
        self._publisher: Any = None
        self.backend = "memory"
        # One channel per schema, so deployments sharing a database don't wake each other.
        self.channel = CHANNEL if not db.schema else f"{CHANNEL}_{db.schema}"
        #: What the streams of this process read: one log read per wake-up for all.
        self.tail = FeedTail(self._read_log)
        #: The open streams of this process, who reads them and how far behind they are.
        self.followers = FollowerRegistry(
            max_per_client=settings.feed_max_streams_per_client, clock=clock
        )
        #: Every process's streams, through Redis when it is configured.
        self.board: FollowerBoard | None = None

    async def start(self) -> None:
        """Read the newest cursor and start listening for other processes' events."""
        await self._refresh_latest()
        self.tail.reset(self.latest)
        if self._settings.redis_url:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(self._settings.redis_url)
            self._publisher = short_timeout_client(
                self._settings.redis_url, timeout=self._settings.redis_timeout
            )
            self.backend = "redis"
            self._tasks.append(asyncio.create_task(self._listen_redis()))
            schema = f"{self._db.schema}:" if self._db.schema else ""
            self.board = FollowerBoard(
                self.followers, self._publisher, prefix=f"authmesh:followers:{schema}"
            )
            self._tasks.append(asyncio.create_task(self.board.run()))
        elif not self._db.is_sqlite:
            self.backend = "postgres"
            self._tasks.append(asyncio.create_task(self._listen_postgres()))
        else:
            self.backend = "sqlite-poll"
            self._tasks.append(asyncio.create_task(self._poll()))

    async def stop(self) -> None:
        """Cancel listeners."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.board is not None:
            await self.board.withdraw()
            self.board = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        if self._publisher is not None:
            await self._publisher.aclose()
            self._publisher = None

    async def all_followers(self) -> list[FollowerJSON]:
        """The open streams of every process (with Redis), else of this one; oldest first."""
        if self.board is None:
            return self.followers.snapshot()
        return await self.board.snapshot()

    def drain(self) -> None:
        """End every feed stream of this process (for a shutdown); subscribers reconnect."""
        self.draining = True
        self._wakeups.wake_all()

    def _advance(self, cursor: int) -> None:
        if cursor > self.latest:
            self.latest = cursor
            self.followers.note_head(cursor)
            self._wakeups.wake_all()

    async def notify(self, cursor: int) -> None:
        """Announce a committed event to this process and to the others."""
        self._advance(cursor)
        try:
            if self._publisher is not None:
                await self._publisher.publish(self.channel, str(cursor))
            elif not self._db.is_sqlite:
                async with self._db.engine.connect() as conn:
                    raw = await conn.get_raw_connection()
                    await raw.driver_connection.execute(  # type: ignore[union-attr]
                        "SELECT pg_notify($1, $2)", self.channel, str(cursor)
                    )
        except Exception as exc:  # committed and durable: never fail the caller for this
            _warn(f"could not broadcast revocation cursor {cursor}; others read it later", exc)

    async def wait(self, seen: int, timeout: float) -> bool:
        """Return when a cursor newer than ``seen`` is known (True), or after ``timeout``.

        Every open feed stream waits here between writes: one future each, no
        task and no timer of its own (:mod:`~authmesh.server.feed.wakeups`);
        the wait may end up to 50 ms early.
        """
        if self.latest > seen or self.draining:
            return True
        return await self._wakeups.wait(timeout)

    async def _read_log(self, cursor: int, now: float, limit: int) -> list[RevocationEvent]:
        async with self._db.transaction() as session:
            return await revocations.events_since(session, cursor, now=now, limit=limit)

    async def _refresh_latest(self) -> None:
        async with self._db.transaction() as session:
            self._advance(await revocations.latest_cursor(session))

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._settings.feed_poll_interval)
            with contextlib.suppress(Exception):
                await self._refresh_latest()

    async def _listen_postgres(self) -> None:
        import asyncpg

        dsn = make_url(self._db.url).set(drivername="postgresql").render_as_string(False)
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(dsn, timeout=self._db.timeouts.connect)
                await conn.add_listener(self.channel, self._on_pg_notify)
                # Anything written while we were not listening.
                await self._refresh_latest()
                while not conn.is_closed():
                    await asyncio.sleep(5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _warn("revocation LISTEN connection lost; reconnecting", exc)
                await asyncio.sleep(1)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close()

    def _on_pg_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            self._advance(int(payload))

    async def _listen_redis(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(self.channel)
                await self._refresh_latest()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        with contextlib.suppress(ValueError):
                            self._advance(int(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("revocation pub/sub connection lost; reconnecting", exc_info=True)
                await asyncio.sleep(1)


def _warn(what: str, exc: Exception) -> None:
    """A database outage in one line (it is expected, and a traceback says no more)."""
    outage = database_outage(exc)
    if outage is None:
        # Redis or the network: named by type, as the database's outages are.
        log.warning("%s: %s", what, type(exc).__name__)
    else:
        log.warning("%s: %s", what, describe_outage(outage))
