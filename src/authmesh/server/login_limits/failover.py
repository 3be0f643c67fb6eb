"""The shared (Redis) limiter, and what sign-ins get while Redis cannot be reached.

Two policies, chosen by ``sign_in_limits_on_redis_outage``:

- ``per_process`` (the default): each server process counts on its own, in
  memory, until Redis answers again; a warning is logged when the outage starts
  and when it ends. Guessing is still limited, per process instead of for the
  whole deployment.
- ``refuse``: sign-ins are refused (503 ``temporarily_unavailable`` with
  ``Retry-After``) until Redis answers again.

After a failure Redis is left alone for ``retry_interval`` seconds, so an outage
costs one short timeout, not one per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from authmesh.server.login_limits.errors import RateLimiterUnavailable
from authmesh.server.login_limits.limiter import Clock, Decision, RateLimiter
from authmesh.server.login_limits.redis_limiter import RedisRateLimiter
from authmesh.server.redis_outage import RedisOutage

__all__ = ["FailoverRateLimiter"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class FailoverRateLimiter:
    """A :class:`RateLimiter` on Redis that answers from ``fallback`` while Redis is down.

    Args:
        shared: the Redis limiter every process shares.
        fallback: this process's limiter, or ``None`` to refuse while Redis is down.
        retry_interval: seconds to wait after a failure before calling Redis again.
        clock: monotonic seconds (tests move it).

    Raises:
        RateLimiterUnavailable: from any method while Redis is down and there is
            no fallback; always from :meth:`unlock` when Redis fails.
    """

    __slots__ = ("_fallback", "_outage", "_shared")

    def __init__(
        self,
        shared: RedisRateLimiter,
        fallback: RateLimiter | None,
        *,
        retry_interval: float = 5.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._shared = shared
        self._fallback = fallback
        self._outage = RedisOutage(retry_interval, clock)

    @property
    def retry_interval(self) -> float:
        """Seconds to wait after a failure before calling Redis again."""
        return self._outage.retry_interval

    @property
    def redis_down(self) -> bool:
        """Whether the last call to Redis failed (and no call since succeeded)."""
        return self._outage.down

    def retry_after(self) -> float:
        """Seconds until Redis is tried again (the ``Retry-After`` of a refusal)."""
        return self._outage.retry_after()

    async def _run(
        self,
        shared: Callable[[RateLimiter], Awaitable[T]],
    ) -> T:
        if self._outage.worth_trying():
            try:
                result = await shared(self._shared)
            except RateLimiterUnavailable as exc:
                self._went_down(exc)
            else:
                self._came_back()
                return result
        if self._fallback is None:
            raise RateLimiterUnavailable("the rate limiter's Redis is down")
        return await shared(self._fallback)

    def _went_down(self, exc: RateLimiterUnavailable) -> None:
        if self._outage.failed():
            policy = "per-process limits" if self._fallback is not None else "refusing sign-ins"
            log.warning("%s; %s until it answers again", exc, policy)

    def _came_back(self) -> None:
        if self._outage.succeeded():
            log.warning("the rate limiter's Redis answers again; limits are shared again")

    async def ping(self) -> bool:
        """Whether Redis answers now (a health check; it also ends an outage early)."""
        try:
            await self._shared.ping()
        except RateLimiterUnavailable as exc:
            self._went_down(exc)
            return False
        self._came_back()
        return True

    async def hit(self, key: str, limit: int, window: float) -> Decision:
        """See :meth:`RateLimiter.hit`."""
        return await self._run(lambda lim: lim.hit(key, limit, window))

    async def check(self, key: str) -> Decision:
        """See :meth:`RateLimiter.check`."""
        return await self._run(lambda lim: lim.check(key))

    async def record_failure(self, key: str) -> Decision:
        """See :meth:`RateLimiter.record_failure`."""
        return await self._run(lambda lim: lim.record_failure(key))

    async def reset(self, key: str) -> None:
        """See :meth:`RateLimiter.reset`."""
        await self._run(lambda lim: lim.reset(key))

    async def unlock(self, key: str) -> None:
        """Lift the lock everywhere; Redis is always asked, as the lock lives there.

        Raises:
            RateLimiterUnavailable: Redis failed, so the shared lock may stay.
        """
        if self._fallback is not None:
            await self._fallback.unlock(key)
        try:
            await self._shared.unlock(key)
        except RateLimiterUnavailable as exc:
            self._went_down(exc)
            raise
        self._came_back()

    async def aclose(self) -> None:
        """Close the Redis client."""
        await self._shared.aclose()
