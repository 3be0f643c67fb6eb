"""When to call a Redis that failed again: :class:`RedisOutage`.

After a failure Redis is left alone for ``retry_interval`` seconds, so an outage
costs one short timeout, not one per request. Its users log the start and the
end of an outage once each.
"""

from __future__ import annotations

import time

from authmesh.jose.policy import Clock

__all__ = ["RedisOutage"]


class RedisOutage:
    """Whether Redis is down, and when to try it again.

    Args:
        retry_interval: seconds to leave Redis alone after a failure.
        clock: monotonic seconds (tests move it).
    """

    __slots__ = ("_clock", "_down_until", "retry_interval")

    def __init__(self, retry_interval: float = 5.0, clock: Clock = time.monotonic) -> None:
        self.retry_interval = retry_interval
        self._clock = clock
        self._down_until: float | None = None

    @property
    def down(self) -> bool:
        """Whether the last call failed (and no call since succeeded)."""
        return self._down_until is not None

    def worth_trying(self) -> bool:
        """Whether to call Redis now: it is up, or its retry interval has passed."""
        return self._down_until is None or self._clock() >= self._down_until

    def retry_after(self) -> float:
        """Seconds until Redis is tried again (0 while it is up)."""
        if self._down_until is None:
            return 0.0
        return max(0.0, self._down_until - self._clock())

    def failed(self) -> bool:
        """Note a failed call; whether it starts an outage (the caller logs it)."""
        started = self._down_until is None
        self._down_until = self._clock() + self.retry_interval
        return started

    def succeeded(self) -> bool:
        """Note a call that worked; whether it ends an outage (the caller logs it)."""
        ended = self._down_until is not None
        self._down_until = None
        return ended
