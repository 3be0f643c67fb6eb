"""Readiness: can this process serve now? The database, and Redis when one is configured.

``/healthz`` only says the process is alive (a load balancer must not restart a
server because its database is down); ``/readyz`` asks the dependencies, each
within a bound, so a partitioned database makes it answer 503 in seconds.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from sqlalchemy import text

from authmesh.server.context import ServerContext

__all__ = ["Readiness"]

State = Literal["up", "down", "not_configured"]


class Readiness:
    """Probes the database and Redis; owns the small Redis client it pings with."""

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        timeouts = ctx.db.timeouts
        #: One probe's bound: a checkout ping, a connect, and a trivial statement.
        self.bound = timeouts.ping + timeouts.connect + 1.0
        self._redis: Any = None

    async def database(self) -> State:
        """``up`` when ``SELECT 1`` answers within the bound."""
        try:
            async with asyncio.timeout(self.bound):
                async with self._ctx.db.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except Exception:
            self._ctx.db.note_outage()
            return "down"
        return "up"

    async def redis(self) -> State:
        """``up`` when Redis answers PING within the bound; ``not_configured`` without Redis."""
        url = self._ctx.settings.redis_url
        if not url:
            return "not_configured"
        if self._redis is None:
            import redis.asyncio as aioredis

            self._redis = aioredis.from_url(
                url, socket_connect_timeout=self.bound, socket_timeout=self.bound
            )
        try:
            async with asyncio.timeout(self.bound):
                await self._redis.ping()
        except Exception:
            return "down"
        return "up"

    async def check(self) -> dict[str, State]:
        """Each dependency's state, probed concurrently."""
        database, redis = await asyncio.gather(self.database(), self.redis())
        return {"database": database, "redis": redis}

    async def close(self) -> None:
        """Close the Redis client, if one was made."""
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
