"""The contract of a login limiter: request rates and login failures, by opaque key.

Two primitives behind one :class:`RateLimiter` protocol:

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

Two implementations pass the same contract tests:
:class:`~authmesh.server.login_limits.memory_limiter.MemoryRateLimiter` (one
process, bounded memory) and
:class:`~authmesh.server.login_limits.redis_limiter.RedisRateLimiter` (atomic
Lua scripts, keys with a TTL, so every server process shares the same limits).

Keys are opaque strings (the server passes ``"acct:<username-lowercased>"`` and
``"ip:<address>"``). They are never logged and never stored as given: both
backends keep a BLAKE2b digest, so attacker-chosen usernames cannot make keys
large and Redis holds no usernames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from authmesh.errors import ConfigError

__all__ = ["ALLOWED", "Clock", "Decision", "RateLimitConfig", "RateLimiter"]

Clock = Callable[[], float]


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


#: The answer when nothing stands in the way.
ALLOWED = Decision(allowed=True)


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
