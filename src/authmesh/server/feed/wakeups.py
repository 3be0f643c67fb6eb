"""Waiting for news or a deadline, for many streams at once, with shared timers.

Every open feed stream waits between writes: until the hub learns of a newer
cursor, or until its heartbeat is due. With ``asyncio.timeout`` around an
``asyncio.Event`` each wait costs a timer of its own and, when nothing happens,
a cancellation raised through the stream's frames: most of what an idle
replica with 1,000 streams spends, and a cost on every stream at every block.

:class:`Wakeups` gives each wait one future. News resolves every waiting
future ``True`` in one pass; deadlines are rounded *down* to a grain
(:data:`GRAIN`, 50 ms) and share one timer per grain, which resolves its
futures ``False``. A wait so ends at most one grain early, never late, and
the streams whose heartbeats fall due in the same grain are served in one
turn of the loop. A wait shorter than a few grains keeps its exact deadline
(rounding it down could end it at once, again and again).
"""

from __future__ import annotations

import asyncio
import math

__all__ = ["GRAIN", "Wakeups"]

#: Seconds a deadline may be brought forward so that waits share a timer.
GRAIN = 0.05


class Wakeups:
    """Waiters for news, each with a deadline; :meth:`wake_all` is the news."""

    def __init__(self) -> None:
        self._waiting: set[asyncio.Future[bool]] = set()
        #: Futures by their (rounded) deadline, and that deadline's timer.
        self._due: dict[float, set[asyncio.Future[bool]]] = {}
        self._timers: dict[float, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    async def wait(self, timeout: float) -> bool:
        """``True`` when :meth:`wake_all` is called, ``False`` once ``timeout`` is (nearly) up."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        deadline = loop.time() + timeout
        if timeout >= 4 * GRAIN:
            deadline = math.floor(deadline / GRAIN) * GRAIN
        due = self._due.get(deadline)
        if due is None:
            due = self._due[deadline] = set()
            self._timers[deadline] = loop.call_at(deadline, self._expire, deadline)
        due.add(waiter)
        self._waiting.add(waiter)
        try:
            return await waiter
        finally:
            self._waiting.discard(waiter)
            due.discard(waiter)
            if not due and self._due.get(deadline) is due:
                del self._due[deadline]
                self._timers.pop(deadline).cancel()

    def wake_all(self) -> None:
        """End every wait now, with ``True``."""
        waiting, self._waiting = self._waiting, set()
        for waiter in waiting:
            if not waiter.done():
                waiter.set_result(True)

    def _expire(self, deadline: float) -> None:
        self._timers.pop(deadline, None)
        for waiter in self._due.pop(deadline, ()):
            if not waiter.done():
                waiter.set_result(False)
