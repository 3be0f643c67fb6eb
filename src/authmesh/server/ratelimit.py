"""Brute-force and abuse limits for the auth server: request rates and login failures.

DESIGN: "Login is rate-limited per account and per client address." Two
primitives behind one :class:`RateLimiter` protocol:

- :meth:`~RateLimiter.hit` — a request limiter (GCRA, the token bucket kept as
  one timestamp): ``limit`` requests per ``window`` seconds, bursts up to
  ``limit``, refilled smoothly.
- :meth:`~RateLimiter.record_failure` / :meth:`~RateLimiter.check` /
  :meth:`~RateLimiter.reset` / :meth:`~RateLimiter.unlock` — a failure tracker
  for logins: ``free_failures`` cost nothing, each further failure doubles a
  wait (1 s, 2 s, 4 s… up to ``max_delay``), and ``lock_after`` failures lock
  the key for ``lock_seconds`` (or until an admin calls :meth:`unlock`). The
  lock starts a fresh count, so after it ends the owner has the free failures
  again.

Two implementations pass the same contract tests: :class:`MemoryRateLimiter`
(one process, bounded memory) and :class:`RedisRateLimiter` (atomic Lua
scripts, keys with a TTL, so every server process shares the same limits).

Keys are opaque strings (the server passes ``"acct:<username-lowercased>"`` and
``"ip:<address>"``). They are never logged and never stored as given: both
backends keep a BLAKE2b digest, so attacker-chosen usernames cannot make keys
large and Redis holds no usernames.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from authmesh.errors import ConfigError, OperatorError

__all__ = [
    "Clock",
    "Decision",
    "MemoryRateLimiter",
    "RateLimitConfig",
    "RateLimiter",
    "RateLimiterUnavailable",
    "RedisRateLimiter",
]

Clock = Callable[[], float]
_V = TypeVar("_V")

_MICRO = 1_000_000


class RateLimiterUnavailable(OperatorError):
    """The limiter's backend (Redis) cannot be reached; the caller fails closed or open."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The answer of a limiter.

    Args:
        allowed: whether the attempt may go ahead now.
        retry_after: seconds until it may (0 when allowed); the ``Retry-After``.
        locked: the key is locked out (failure tracker only), until ``retry_after``
            passes or an admin unlocks it.
    """

    allowed: bool
    retry_after: float = 0.0
    locked: bool = False


_ALLOWED = Decision(allowed=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitConfig:
    """How login failures are punished; times in seconds.

    The server's settings map as ``login_max_failures`` → ``free_failures``,
    ``login_lock_after`` → ``lock_after``, ``login_lock_seconds`` → ``lock_seconds``.

    Args:
        free_failures: failures with no wait after them.
        base_delay: the wait after the first failure past the free ones; it doubles
            with each further failure.
        max_delay: the cap on that wait.
        lock_after: failures (free ones included) that lock the key.
        lock_seconds: how long a lock lasts unless an admin lifts it.
        failure_memory: failures are forgotten this long after the last one.

    Raises:
        ConfigError: values out of range.
    """

    free_failures: int = 5
    base_delay: float = 1.0
    max_delay: float = 300.0
    lock_after: int = 20
    lock_seconds: float = 900.0
    failure_memory: float = 3600.0

    def __post_init__(self) -> None:
        if self.free_failures < 0:
            raise ConfigError("free_failures must not be negative")
        if self.lock_after < 1:
            raise ConfigError("lock_after must be at least 1")
        if not 0 < self.base_delay <= self.max_delay:
            raise ConfigError("base_delay must be positive and at most max_delay")
        if self.lock_seconds <= 0:
            raise ConfigError("lock_seconds must be positive")
        if self.failure_memory < self.max_delay:
            # The wait lives in the failure record: it must not be forgotten first.
            raise ConfigError("failure_memory must be at least max_delay")

    def delay_after(self, failures: int) -> float:
        """The wait imposed after the ``failures``-th consecutive failure."""
        extra = failures - self.free_failures
        if extra <= 0:
            return 0.0
        return min(self.base_delay * 2.0 ** min(extra - 1, 64), self.max_delay)


class RateLimiter(Protocol):
    """Request limits and login-failure tracking by opaque key."""

    async def hit(self, key: str, limit: int, window: float) -> Decision:
        """Count one request; allowed while at most ``limit`` fall in ``window`` seconds.

        A key's counter is separate for each ``(limit, window)``.
        """
        ...

    async def check(self, key: str) -> Decision:
        """Whether a login for ``key`` may be attempted now (back-off or lock)."""
        ...

    async def record_failure(self, key: str) -> Decision:
        """Count a failed login; the answer says whether the next one may follow at once."""
        ...

    async def reset(self, key: str) -> None:
        """Forget the failures of ``key`` (on a successful login); a lock stays."""
        ...

    async def unlock(self, key: str) -> None:
        """Lift a lock and forget the failures of ``key`` (admin action)."""
        ...


def _digest(key: str) -> str:
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _gcra(key: str, limit: int, window: float) -> tuple[str, int, int]:
    """The counter's digest, the emission interval and the burst capacity in µs.

    Whole microseconds keep the arithmetic exact (integers below 2**53 are exact in
    a double, Lua's only number type too): with float seconds, ``limit`` additions
    of ``window / limit`` to an epoch timestamp drift enough to refuse the
    ``limit``-th request of a burst. The interval is rounded up and the capacity
    is exactly ``limit`` intervals, so a burst admits ``limit`` requests, never more.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if not window > 0:
        raise ValueError("window must be positive")
    interval = max(1, math.ceil(window * _MICRO / limit))
    return _digest(f"{limit}/{window!r}/{key}"), interval, interval * limit


# -- in-process -----------------------------------------------------------------------


class _ExpiringMap(Generic[_V]):
    """``digest -> value`` with an expiry each, at most ``max_keys`` entries.

    Entries stay in order of last write. When full, expired entries are swept;
    if that frees less than a tenth, the least recently written go too. Each
    sweep frees at least a tenth of the map, so its cost is amortised.
    """

    __slots__ = ("_data", "_max")

    def __init__(self, max_keys: int) -> None:
        self._data: dict[str, tuple[float, _V]] = {}
        self._max = max_keys

    def get(self, digest: str, now: float) -> _V | None:
        entry = self._data.get(digest)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._data[digest]
            return None
        return entry[1]

    def put(self, digest: str, value: _V, expires_at: float, now: float) -> None:
        self._data.pop(digest, None)
        if len(self._data) >= self._max:
            self._make_room(now)
        self._data[digest] = (expires_at, value)

    def delete(self, digest: str) -> None:
        self._data.pop(digest, None)

    def _make_room(self, now: float) -> None:
        live = {d: e for d, e in self._data.items() if e[0] > now}
        target = self._max - max(1, self._max // 10)
        if len(live) > target:
            # Under a flood of distinct keys the oldest records go first: this fails
            # open for them, the price of a memory bound (use Redis to avoid it).
            keep: Iterator[str] = iter(list(live)[len(live) - target :])
            live = {d: live[d] for d in keep}
        self._data = live

    def __len__(self) -> int:
        return len(self._data)


@dataclass(slots=True)
class _Failures:
    count: int
    last: float
    blocked_until: float


class MemoryRateLimiter:
    """The limiter for one server process, in memory.

    Its methods do not await anything, so on one event loop each is atomic. Memory
    is bounded: each of its three maps (request counters, failure records, locks)
    holds at most ``max_keys`` entries, expired ones swept first.

    Args:
        config: the failure tracker's rules.
        clock: monotonic seconds; injected so tests can move time.
        max_keys: the bound of each map.
    """

    __slots__ = ("_clock", "_failures", "_hits", "_locks", "config")

    def __init__(
        self,
        config: RateLimitConfig | None = None,
        *,
        clock: Clock = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if max_keys < 10:
            raise ConfigError("max_keys must be at least 10")
        self.config = config or RateLimitConfig()
        self._clock = clock
        self._hits: _ExpiringMap[int] = _ExpiringMap(max_keys)  # TAT, µs
        self._failures: _ExpiringMap[_Failures] = _ExpiringMap(max_keys)
        self._locks: _ExpiringMap[float] = _ExpiringMap(max_keys)

    async def hit(self, key: str, limit: int, window: float) -> Decision:
        """See :meth:`RateLimiter.hit`."""
        digest, interval, capacity = _gcra(key, limit, window)
        now_s = self._clock()
        now = int(now_s * _MICRO)
        tat = max(self._hits.get(digest, now_s) or now, now)
        new_tat = tat + interval
        if new_tat - now > capacity:
            return Decision(allowed=False, retry_after=(new_tat - now - capacity) / _MICRO)
        self._hits.put(digest, new_tat, new_tat / _MICRO, now_s)
        return _ALLOWED

    def _locked(self, digest: str, now: float) -> Decision | None:
        until = self._locks.get(digest, now)
        if until is None:
            return None
        return Decision(allowed=False, retry_after=until - now, locked=True)

    async def check(self, key: str) -> Decision:
        """See :meth:`RateLimiter.check`."""
        digest = _digest(key)
        now = self._clock()
        locked = self._locked(digest, now)
        if locked is not None:
            return locked
        record = self._failures.get(digest, now)
        if record is not None and record.blocked_until > now:
            return Decision(allowed=False, retry_after=record.blocked_until - now)
        return _ALLOWED

    async def record_failure(self, key: str) -> Decision:
        """See :meth:`RateLimiter.record_failure`."""
        digest = _digest(key)
        now = self._clock()
        locked = self._locked(digest, now)
        if locked is not None:
            return locked
        config = self.config
        record = self._failures.get(digest, now)
        count = (record.count if record is not None else 0) + 1
        if count >= config.lock_after:
            self._failures.delete(digest)
            until = now + config.lock_seconds
            self._locks.put(digest, until, until, now)
            return Decision(allowed=False, retry_after=config.lock_seconds, locked=True)
        delay = config.delay_after(count)
        self._failures.put(
            digest, _Failures(count, now, now + delay), now + config.failure_memory, now
        )
        return Decision(allowed=False, retry_after=delay) if delay > 0 else _ALLOWED

    async def reset(self, key: str) -> None:
        """See :meth:`RateLimiter.reset`."""
        self._failures.delete(_digest(key))

    async def unlock(self, key: str) -> None:
        """See :meth:`RateLimiter.unlock`."""
        digest = _digest(key)
        self._failures.delete(digest)
        self._locks.delete(digest)

    def __len__(self) -> int:
        """Entries held across the three maps (for metrics and tests)."""
        return len(self._hits) + len(self._failures) + len(self._locks)


# -- Redis ----------------------------------------------------------------------------

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
# whole microseconds: exact in Lua's doubles (see _gcra).
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
        return _ALLOWED
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
    ) -> RedisRateLimiter:
        """A limiter with its own client for ``url``; :meth:`aclose` closes it."""
        limiter = cls(Redis.from_url(url), config, prefix=prefix)
        limiter._owned = True
        return limiter

    async def aclose(self) -> None:
        """Close the Redis client if this limiter made it."""
        if self._owned:
            await self._redis.aclose()

    def _now(self) -> str:
        return "" if self._clock is None else repr(self._clock())

    def _account_keys(self, key: str) -> list[str]:
        tag = "{" + _digest(key) + "}"
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
        digest, interval, capacity = _gcra(key, limit, window)
        counter = f"{self._prefix}hit:{{{digest}}}"
        now = "" if self._clock is None else str(int(self._clock() * _MICRO))
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
