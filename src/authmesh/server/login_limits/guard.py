"""Brute-force and abuse defence around logins and the public endpoints.

Failed logins are tracked per account and per client address (exponential
back-off, then a lock an admin can lift); request rates are limited per address.
Every refusal is the same 429 ``slow_down`` with ``Retry-After``, whether or not
the account exists or is locked, so the answers tell an attacker nothing.

Only sign-ins (a password checked) use the limits every process shares, in Redis
when configured; the other requests are counted by this process alone and never
wait on Redis. While Redis is down, sign-ins follow ``sign_in_limits_on_redis_outage``
(see :mod:`authmesh.server.login_limits.failover`).
"""

from __future__ import annotations

import logging

from authmesh.server.config import ServerSettings
from authmesh.server.errors import RateLimited
from authmesh.server.login_limits.errors import RateLimiterUnavailable, TemporarilyUnavailable
from authmesh.server.login_limits.failover import FailoverRateLimiter
from authmesh.server.login_limits.limiter import Decision, RateLimitConfig, RateLimiter
from authmesh.server.login_limits.memory_limiter import MemoryRateLimiter
from authmesh.server.login_limits.redis_limiter import RedisRateLimiter
from authmesh.store.users import username_key

__all__ = ["LoginGuard"]

log = logging.getLogger(__name__)
_TOO_MANY = "too many attempts; retry later"


class LoginGuard:
    """Applies the limiter to logins and endpoint hits."""

    def __init__(self, settings: ServerSettings, limiter: RateLimiter | None = None) -> None:
        config = RateLimitConfig(
            free_failures=settings.login_max_failures,
            lock_after=settings.login_lock_after,
            lock_seconds=settings.login_lock_seconds,
        )
        #: This process's counts: request rates of what is not a sign-in, and the
        #: sign-in limits too while Redis is down (``per_process`` policy).
        self.local = MemoryRateLimiter(config)
        self.limiter: RateLimiter
        if limiter is not None:
            self.limiter = limiter
        elif settings.redis_url:
            # One namespace per schema, as for the feed's channel: deployments sharing a
            # Redis keep their own counts.
            prefix = "authmesh:rl:" + (
                f"{settings.database_schema}:" if settings.database_schema else ""
            )
            shared = RedisRateLimiter.from_url(
                settings.redis_url, config, prefix=prefix, timeout=settings.redis_timeout
            )
            per_process = settings.sign_in_limits_on_redis_outage == "per_process"
            self.limiter = FailoverRateLimiter(shared, self.local if per_process else None)
        else:
            self.limiter = self.local
        self._rate = settings.rate_limit_per_minute

    async def close(self) -> None:
        """Release the limiter's connection, if it has one."""
        closer = getattr(self.limiter, "aclose", None)
        if closer is not None:
            await closer()

    @staticmethod
    def _keys(username: str, address: str | None) -> list[str]:
        keys = [f"acct:{username_key(username)}"]
        if address:
            keys.append(f"ip:{address}")
        return keys

    @staticmethod
    def _refuse(decision: Decision) -> None:
        if not decision.allowed:
            raise RateLimited(_TOO_MANY, retry_after=decision.retry_after)

    def _unavailable(self) -> TemporarilyUnavailable:
        seconds = None
        if isinstance(self.limiter, FailoverRateLimiter):
            seconds = self.limiter.retry_after()
        return TemporarilyUnavailable("sign-ins are paused; try again shortly", retry_after=seconds)

    async def redis_reachable(self) -> bool | None:
        """Whether the shared limiter's Redis answers now; ``None`` without Redis."""
        if not isinstance(self.limiter, FailoverRateLimiter):
            return None
        return await self.limiter.ping()

    async def hit(self, endpoint: str, address: str | None, *, signs_in: bool = True) -> None:
        """Count one request of ``address`` to ``endpoint``.

        ``signs_in=False`` (a request proving a token or a client secret, not a
        password): counted by this process alone, never in Redis.

        Raises:
            RateLimited: over ``rate_limit_per_minute``.
            TemporarilyUnavailable: a sign-in while Redis is down, under the
                ``refuse`` policy.
        """
        if self._rate <= 0 or not address:
            return
        limiter = self.limiter if signs_in else self.local
        try:
            decision = await limiter.hit(f"ip:{address}:{endpoint}", self._rate, 60.0)
        except RateLimiterUnavailable:
            raise self._unavailable() from None
        self._refuse(decision)

    async def before_login(self, username: str, address: str | None) -> None:
        """Refuse the attempt while the account or the address is backing off or locked.

        Raises:
            RateLimited: back-off or lock in force.
            TemporarilyUnavailable: the limiter's store is down.
        """
        try:
            for key in self._keys(username, address):
                self._refuse(await self.limiter.check(key))
        except RateLimiterUnavailable:
            raise self._unavailable() from None

    async def failed(self, username: str, address: str | None) -> bool:
        """Record a failed login; whether the account is now locked."""
        locked = False
        try:
            for key in self._keys(username, address):
                decision = await self.limiter.record_failure(key)
                locked = locked or (decision.locked and key.startswith("acct:"))
        except RateLimiterUnavailable:
            log.warning("rate limiter unavailable; a failed login was not counted")
        return locked

    async def succeeded(self, username: str) -> None:
        """A correct password clears the account's failures (not the address's)."""
        try:
            await self.limiter.reset(f"acct:{username_key(username)}")
        except RateLimiterUnavailable:
            log.warning("rate limiter unavailable; failures not reset")

    async def unlock(self, username: str) -> None:
        """An admin lifts the account's lock and back-off.

        Raises:
            TemporarilyUnavailable: Redis is down, so the shared lock may stay.
        """
        try:
            await self.limiter.unlock(f"acct:{username_key(username)}")
        except RateLimiterUnavailable:
            raise self._unavailable() from None
