"""The login limiter of one server process, in memory with a bound on its size."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from authmesh.errors import ConfigError
from authmesh.server.login_limits.counters import MICROSECONDS, gcra, key_digest
from authmesh.server.login_limits.limiter import ALLOWED, Clock, Decision, RateLimitConfig

__all__ = ["MemoryRateLimiter"]

_V = TypeVar("_V")


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
        digest, interval, capacity = gcra(key, limit, window)
        now_s = self._clock()
        now = int(now_s * MICROSECONDS)
        tat = max(self._hits.get(digest, now_s) or now, now)
        new_tat = tat + interval
        if new_tat - now > capacity:
            return Decision(allowed=False, retry_after=(new_tat - now - capacity) / MICROSECONDS)
        self._hits.put(digest, new_tat, new_tat / MICROSECONDS, now_s)
        return ALLOWED

    def _locked(self, digest: str, now: float) -> Decision | None:
        until = self._locks.get(digest, now)
        if until is None:
            return None
        return Decision(allowed=False, retry_after=until - now, locked=True)

    async def check(self, key: str) -> Decision:
        """See :meth:`RateLimiter.check`."""
        digest = key_digest(key)
        now = self._clock()
        locked = self._locked(digest, now)
        if locked is not None:
            return locked
        record = self._failures.get(digest, now)
        if record is not None and record.blocked_until > now:
            return Decision(allowed=False, retry_after=record.blocked_until - now)
        return ALLOWED

    async def record_failure(self, key: str) -> Decision:
        """See :meth:`RateLimiter.record_failure`."""
        digest = key_digest(key)
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
        return Decision(allowed=False, retry_after=delay) if delay > 0 else ALLOWED

    async def reset(self, key: str) -> None:
        """See :meth:`RateLimiter.reset`."""
        self._failures.delete(key_digest(key))

    async def unlock(self, key: str) -> None:
        """See :meth:`RateLimiter.unlock`."""
        digest = key_digest(key)
        self._failures.delete(digest)
        self._locks.delete(digest)

    def __len__(self) -> int:
        """Entries held across the three maps (for metrics and tests)."""
        return len(self._hits) + len(self._failures) + len(self._locks)
