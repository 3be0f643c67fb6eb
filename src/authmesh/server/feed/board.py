"""Every server process's open feed streams, for the live view: :class:`FollowerBoard`.

Each process knows only its own streams (:mod:`~authmesh.server.feed.followers`).
With Redis configured, each process posts the description of its streams there
once a second, under a key of its own that expires after a few seconds, so a
process that died drops off the board by itself; the console's live view reads
every post. While Redis cannot be reached, the view shows this process's
streams alone, as without Redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

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
        self._registry = registry
        self._redis = redis
        self._prefix = prefix
        self.interval = interval

    @property
    def key(self) -> str:
        """Where this process posts (its server name: host and process id)."""
        return f"{self._prefix}{self._registry.server}"

    async def run(self) -> None:
        """Post once per interval until cancelled."""
        while True:
            await self.post()
            await asyncio.sleep(self.interval)

    async def post(self) -> None:
        """Post this process's streams; they expire unless posted again."""
        body = json.dumps(self._registry.snapshot())
        try:
            await self._redis.set(self.key, body, px=int(self.interval * 5000))
        except RedisError as exc:
            log.debug("could not post this process's feed streams: %s", type(exc).__name__)

    async def withdraw(self) -> None:
        """Take this process's post down (a shutdown): its streams are ending."""
        try:
            await self._redis.delete(self.key)
        except RedisError:
            pass  # it expires by itself

    async def snapshot(self) -> list[FollowerJSON]:
        """The streams of every process that posted lately, oldest first (this one's now)."""
        streams = self._registry.snapshot()
        try:
            keys = [
                key
                async for key in self._redis.scan_iter(match=f"{self._prefix}*", count=200)
                if key != self.key.encode()
            ]
            posts = await self._redis.mget(keys) if keys else []
        except RedisError:
            return streams
        for post in posts:
            if post:
                streams.extend(json.loads(post))
        streams.sort(key=lambda stream: stream["connected_at"])
        return streams
