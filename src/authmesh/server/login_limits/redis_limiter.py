"""The login limiter shared by every server process, in Redis: one Lua script per operation."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from authmesh.server.login_limits.counters import MICROSECONDS, gcra, key_digest
from authmesh.server.login_limits.errors import RateLimiterUnavailable
from authmesh.server.login_limits.limiter import ALLOWED, Clock, Decision, RateLimitConfig
from authmesh.server.redis_client import short_timeout_client

__all__ = ["RedisRateLimiter"]

# Every script takes "now" as ARGV[1]; empty means the Redis server's clock, so all
# processes share one clock. Values are written with %.17g to round-trip exactly.
_NOW = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function fmt(x) return string.format('%.17g', x) end
local function ms(s) return math.max(1, math.ceil(s * 1000)) end
"""

# KEYS: counter. ARGV: now (µs or empty), interval (µs), capacity (µs). GCRA in
# whole microseconds: exact in Lua's doubles (see counters.gcra).
_HIT_LUA = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval, capacity = tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > capacity then
  return {1, string.format('%.17g', (new_tat - now - capacity) / 1000000)}
end
-- A second more than the tat needs: Redis expires keys on its own clock, which an
-- injected clock (tests) may not follow; a stale tat is harmless (it is below now).
redis.call('SET', KEYS[1], string.format('%.17g', new_tat), 'PX',
  math.ceil((new_tat - now) / 1000) + 1000)
return {0, '0'}
"""

# KEYS: failures, lock. ARGV: now, failure_memory.
_CHECK_LUA = (
    _NOW
    + """
local lock_until = tonumber(redis.call('GET', KEYS[2]))
if lock_until and lock_until > now then return {2, fmt(lock_until - now)} end
local rec = redis.call('HMGET', KEYS[1], 'last', 'until')
local last, blocked = tonumber(rec[1]), tonumber(rec[2])
if last and blocked and now - last < tonumber(ARGV[2]) and blocked > now then
  return {1, fmt(blocked - now)}
end
return {0, '0'}
"""
)

# KEYS: failures, lock.
# ARGV: now, failure_memory, free_failures, base_delay, max_delay, lock_after, lock_seconds.
_FAIL_LUA = (
    _NOW
    + """
local memory = tonumber(ARGV[2])
local free, base, max_delay = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local lock_after, lock_seconds = tonumber(ARGV[6]), tonumber(ARGV[7])
local lock_until = tonumber(redis.call('GET', KEYS[2]))
if lock_until and lock_until > now then return {2, fmt(lock_until - now)} end
local rec = redis.call('HMGET', KEYS[1], 'n', 'last')
local n, last = tonumber(rec[1]) or 0, tonumber(rec[2])
if not last or now - last >= memory then n = 0 end
n = n + 1
if n >= lock_after then
  redis.call('SET', KEYS[2], fmt(now + lock_seconds), 'PX', ms(lock_seconds))
  redis.call('DEL', KEYS[1])
  return {2, fmt(lock_seconds)}
end
local delay = 0
if n > free then delay = math.min(base * 2 ^ math.min(n - free - 1, 64), max_delay) end
redis.call('HSET', KEYS[1], 'n', n, 'last', fmt(now), 'until', fmt(now + delay))
redis.call('PEXPIRE', KEYS[1], ms(memory))
if delay > 0 then return {1, fmt(delay)} end
return {0, '0'}
"""
)


def _decision(reply: Any) -> Decision:
    # Every script answers {code, seconds}: 0 allowed, 1 wait, 2 locked.
    code, value = int(reply[0]), float(reply[1])
    if code == 0:
        return ALLOWED
    return Decision(allowed=False, retry_after=value, locked=code == 2)


class RedisRateLimiter:
    """The limiter shared by every server process, in Redis.

    Each operation is one Lua script, so concurrent processes never lose an
    update. Every key has a TTL no longer than what it records. The keys of one
    account share a hash tag, so the scripts also work on Redis Cluster.

    Args:
        redis: a ``redis.asyncio`` client (either ``decode_responses`` setting).
        config: the failure tracker's rules.
        prefix: the namespace of this limiter's Redis keys.
        clock: ``None`` (the default) uses the Redis server's clock, which all
            processes share; a callable (epoch seconds) is for tests.

    Raises:
        RateLimiterUnavailable: from any method, when Redis fails.
    """

    __slots__ = ("_check", "_clock", "_fail", "_hit", "_owned", "_prefix", "_redis", "config")

    def __init__(
        self,
        redis: Redis,
        config: RateLimitConfig | None = None,
        *,
        prefix: str = "authmesh:rl:",
        clock: Clock | None = None,
    ) -> None:
        self._redis = redis
        self.config = config or RateLimitConfig()
        self._prefix = prefix
        self._clock = clock
        self._owned = False
        self._hit = redis.register_script(_HIT_LUA)
        self._check = redis.register_script(_CHECK_LUA)
        self._fail = redis.register_script(_FAIL_LUA)

    @classmethod
    def from_url(
        cls,
        url: str,
        config: RateLimitConfig | None = None,
        *,
        prefix: str = "authmesh:rl:",
        timeout: float = 0.5,
    ) -> RedisRateLimiter:
        """A limiter with its own client for ``url``; :meth:`aclose` closes it.

        Every call fails within about ``timeout`` seconds when Redis does not answer.
        """
        limiter = cls(short_timeout_client(url, timeout=timeout), config, prefix=prefix)
        limiter._owned = True
        return limiter

    async def aclose(self) -> None:
        """Close the Redis client if this limiter made it."""
        if self._owned:
            await self._redis.aclose()

    async def ping(self) -> None:
        """Raise :class:`RateLimiterUnavailable` unless Redis answers."""
        await self._call(self._redis.ping())

    def _now(self) -> str:
        return "" if self._clock is None else repr(self._clock())

    def _account_keys(self, key: str) -> list[str]:
        tag = "{" + key_digest(key) + "}"
        return [f"{self._prefix}fail:{tag}", f"{self._prefix}lock:{tag}"]

    async def _call(self, awaitable: Awaitable[Any]) -> Any:
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise RateLimiterUnavailable(
                f"the rate limiter's Redis failed: {type(exc).__name__}"
            ) from exc

    async def hit(self, key: str, limit: int, window: float) -> Decision:
        """See :meth:`RateLimiter.hit`."""
        digest, interval, capacity = gcra(key, limit, window)
        counter = f"{self._prefix}hit:{{{digest}}}"
        now = "" if self._clock is None else str(int(self._clock() * MICROSECONDS))
        args = [now, str(interval), str(capacity)]
        return _decision(await self._call(self._hit(keys=[counter], args=args)))

    async def check(self, key: str) -> Decision:
        """See :meth:`RateLimiter.check`."""
        args = [self._now(), repr(self.config.failure_memory)]
        return _decision(await self._call(self._check(keys=self._account_keys(key), args=args)))

    async def record_failure(self, key: str) -> Decision:
        """See :meth:`RateLimiter.record_failure`."""
        c = self.config
        args = [
            self._now(),
            repr(float(c.failure_memory)),
            str(c.free_failures),
            repr(float(c.base_delay)),
            repr(float(c.max_delay)),
            str(c.lock_after),
            repr(float(c.lock_seconds)),
        ]
        return _decision(await self._call(self._fail(keys=self._account_keys(key), args=args)))

    async def reset(self, key: str) -> None:
        """See :meth:`RateLimiter.reset`."""
        await self._call(self._redis.delete(self._account_keys(key)[0]))

    async def unlock(self, key: str) -> None:
        """See :meth:`RateLimiter.unlock`."""
        await self._call(self._redis.delete(*self._account_keys(key)))
