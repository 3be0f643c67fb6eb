"""Every server process's open feed streams, for the live view: :class:`FollowerBoard`.

Each process knows only its own streams (:mod:`~authmesh.server.feed.followers`).
With Redis configured, each process posts the description of its streams there
once a second, under a key of its own that expires after a few seconds, so a
process that died drops off the board by itself, and names itself in a set of
posters; the console's live view reads the set and every post in it (two round
trips, whatever else Redis holds: no scan of the keyspace). While Redis cannot
be reached, the view shows this process's streams alone, as without Redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, cast

from redis.exceptions import RedisError

from authmesh.server.feed.followers import FollowerJSON, FollowerRegistry

__all__ = ["FollowerBoard"]

log = logging.getLogger(__name__)


class FollowerBoard:
    """This process's streams posted to Redis, and everyone's read back.

    Args:
        registry: this process's open streams.
        redis: a client whose calls fail within a short timeout.
        prefix: the namespace of the posts (one per database schema).
        interval: seconds between two posts.
    """

    def __init__(
        self, registry: FollowerRegistry, redis: Any, *, prefix: str, interval: float = 1.0
    ) -> None:
        # Posts live under ``{prefix}post:{server}``, the index of posters at ``{prefix}servers``.
        self._registry = registry
        self._redis = redis
        self._prefix = prefix
        self._index = f"{prefix}servers"
        self.interval = interval

    @property
    def key(self) -> str:
        """Where this process posts (its server name: host and process id)."""
        return f"{self._prefix}post:{self._registry.server}"

    async def run(self) -> None:
        """Post once per interval until cancelled."""
        while True:
            await self.post()
            await asyncio.sleep(self.interval)

    async def post(self) -> None:
        """Post this process's streams; they expire unless posted again."""
        body = json.dumps(self._registry.snapshot())
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(self.key, body, px=int(self.interval * 5000))
                # An index of the posters, so that a reader never scans the keyspace.
                pipe.sadd(self._index, self._registry.server)
                await pipe.execute()
        except RedisError as exc:
            log.debug("could not post this process's feed streams: %s", type(exc).__name__)

    async def withdraw(self) -> None:
        """Take this process's post down (a shutdown): its streams are ending."""
        try:
            await self._redis.delete(self.key)
            await self._redis.srem(self._index, self._registry.server)
        except RedisError:
            pass  # the post expires by itself, and the next reader drops the name

    async def snapshot(self) -> list[FollowerJSON]:
        """The streams of every process that posted lately, oldest first (this one's now)."""
        streams = self._registry.snapshot()
        try:
            names = [n.decode(errors="replace") for n in await self._redis.smembers(self._index)]
            others = [n for n in names if n != self._registry.server]
            keys = [f"{self._prefix}post:{n}" for n in others]
            posts = await self._redis.mget(keys) if keys else []
            gone = [n for n, post in zip(others, posts, strict=True) if post is None]
            if gone:
                await self._redis.srem(self._index, *gone)
        except RedisError:
            return streams
        for post in posts:
            streams.extend(_streams_of(post))
        streams.sort(key=lambda stream: stream["connected_at"])
        return streams


def _streams_of(post: bytes | None) -> list[FollowerJSON]:
    """The streams of a post; none from a post this code did not write (a shared Redis)."""
    try:
        streams = json.loads(post) if post else []
    except ValueError:
        return []
    if not isinstance(streams, list):
        return []
    return [
        cast(FollowerJSON, stream)
        for stream in streams
        if isinstance(stream, dict)
        and isinstance(stream.get("connected_at"), int | float)
        and isinstance(stream.get("deliveries"), list)
    ]
