"""The newest revocation events, read once per wake-up and shared by every stream.

When an event is written, every stream of the process that is caught up wants
the same few events. The tail reads them from the log once, in one transaction,
and hands them out from memory; a stream further behind (a service catching up
after a restart) reads the log itself.

Correctness rests on the cursor order of the log: a cursor is visible only after
every lower one is committed (writes serialise on SQLite, take an advisory lock
on PostgreSQL; store/revocations.py). So a read that starts once the hub knows
cursor ``seen`` returns every event up to ``seen``, and a page that ends at
cursor ``c`` holds every event up to ``c``.

When a block wakes 1,000 streams at once, one of them reads and the others wait
on the same :class:`asyncio.Event`: they all resume in the same turn of the
loop once the read is done, instead of passing a lock from one to the next
(999 turns of the loop in a row, each with its own poll of the sockets).
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Awaitable, Callable

from authmesh.revocation import RevocationEvent

__all__ = ["FeedTail"]

#: Reads the log: live events after a cursor, ascending, at most ``limit``.
Reader = Callable[[int, float, int], Awaitable[list[RevocationEvent]]]


class FeedTail:
    """Events with cursors in ``(start, upto]``, complete, at most ``size`` of them.

    Args:
        read: how to read the log.
        size: the most events kept; older ones are dropped (``start`` moves up).
    """

    def __init__(self, read: Reader, *, size: int = 4096) -> None:
        self._read = read
        self._size = size
        #: Set when the read in progress ends (``None``: no read in progress).
        self._reading: asyncio.Event | None = None
        self._events: list[RevocationEvent] = []
        self._cursors: list[int] = []
        self.start = 0
        self.upto = 0
        #: Log reads made on behalf of the tail (shared) and of streams behind it.
        self.shared_reads = 0
        self.direct_reads = 0

    def reset(self, latest: int) -> None:
        """Start empty at ``latest``: streams behind it read the log themselves."""
        self._events.clear()
        self._cursors.clear()
        self.start = self.upto = latest

    async def since(
        self, cursor: int, *, seen: int, now: float, limit: int
    ) -> list[RevocationEvent]:
        """Live events after ``cursor``, ascending, at most ``limit``; complete up to ``seen``.

        ``seen`` is a cursor known to be committed (the hub's latest, read before
        the call).
        """
        if cursor < self.start:
            self.direct_reads += 1
            return await self._read(cursor, now, limit)
        if self.upto < seen:
            await self._extend_to(seen, now, limit)
            if cursor < self.start:  # trimmed past this stream meanwhile
                self.direct_reads += 1
                return await self._read(cursor, now, limit)
        at = bisect.bisect_right(self._cursors, cursor)
        return [e for e in self._events[at : at + limit] if e.expires_at > now]

    async def _extend_to(self, seen: int, now: float, limit: int) -> None:
        """Read the log until complete up to ``seen``, or wait for the stream reading it.

        One read at a time: a stream that finds one in progress waits for it
        to end, then looks again (it may have been for an older ``seen``, or
        have failed: its reader's stream gets the error, another one reads).
        """
        while self.upto < seen:
            reading = self._reading
            if reading is not None:
                await reading.wait()
                continue
            self._reading = reading = asyncio.Event()
            try:
                while self.upto < seen and await self._extend(seen, now, limit):
                    pass
            finally:
                self._reading = None
                reading.set()

    async def _extend(self, seen: int, now: float, limit: int) -> bool:
        """Read one page past ``upto``; whether more may follow."""
        self.shared_reads += 1
        events = await self._read(self.upto, now, limit)
        self._events.extend(events)
        self._cursors.extend(e.cursor for e in events)
        if len(events) == limit:
            # A full page: complete up to its last cursor only; the next call reads on.
            self.upto = events[-1].cursor
        else:
            self.upto = max(seen, events[-1].cursor if events else self.upto)
        excess = len(self._events) - self._size
        if excess > 0:
            self.start = self._cursors[excess - 1]
            del self._events[:excess]
            del self._cursors[:excess]
        return len(events) == limit
