"""A clock that moves only when a test moves it."""

from __future__ import annotations

import time

__all__ = ["FakeClock"]


class FakeClock:
    """A callable clock (seconds as a float) for anything that takes ``clock=``.

    It starts at ``start`` (the real time now if not given) and moves only by
    :meth:`advance` or :meth:`set`, so expiry, leeway, cache lifetimes and feed
    staleness can be tested without sleeping::

        clock = FakeClock()
        auth = ServiceAuth(config, clock=clock)
        clock.advance(301)      # the 5-minute token has expired now
    """

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds``; the new time."""
        self.now += seconds
        return self.now

    def set(self, now: float) -> None:
        """Jump to ``now`` (backwards too: clocks do that)."""
        self.now = float(now)

    def __repr__(self) -> str:
        return f"FakeClock({self.now!r})"
