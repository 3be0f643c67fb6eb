"""A reader's stream of the feed: every live event after a cursor, then new ones.

What a :class:`FeedStream` promises its reader:

* **cursor**: events come in strictly increasing cursor order, each after the
  cursor the stream started from; no live event is skipped, so a reader that
  resumes from the last cursor it saw misses nothing;
* **paging**: the log is read :data:`~authmesh.server.feed.page.PAGE_SIZE`
  events at a time; after a full page the next is read at once;
* **heartbeat**: once caught up, the stream yields a :class:`Heartbeat` and
  waits at most ``feed_heartbeat`` seconds for news, so an idle reader hears
  from it at least that often.

It ends when the server drains (shutdown) or when ``stop`` says so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypedDict

from authmesh.revocation import RevocationEvent
from authmesh.server.context import ServerContext
from authmesh.server.feed.page import PAGE_SIZE

__all__ = ["FeedStream", "Heartbeat", "HeartbeatJSON"]


class HeartbeatJSON(TypedDict):
    """The data of a heartbeat on the stream."""

    latest_cursor: int
    server_time: float


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The stream is alive and caught up to ``latest_cursor``."""

    latest_cursor: int
    server_time: float

    def to_json(self) -> HeartbeatJSON:
        """The heartbeat as the feed sends it."""
        return {"latest_cursor": self.latest_cursor, "server_time": self.server_time}


async def _never() -> bool:
    return False


class FeedStream:
    """Events after ``cursor``, then heartbeats and new events, as an async iterator.

    Args:
        ctx: the server context (its hub wakes the stream).
        cursor: the last cursor the reader has seen.
        stop: asked before the first read of the log and after every quiet
            heartbeat interval; the stream ends when it says so (a route passes
            "has the client gone?"). Not asked on a wake-up for new events,
            where 1,000 streams would ask at once: a reader that has gone is
            found by the failed write, or at the next heartbeat.
    """

    def __init__(
        self,
        ctx: ServerContext,
        cursor: int,
        *,
        stop: Callable[[], Awaitable[bool]] = _never,
    ) -> None:
        self._ctx = ctx
        self._stop = stop
        self.cursor = cursor
        """The cursor of the last event yielded (where a reader would resume)."""

    def __aiter__(self) -> AsyncIterator[RevocationEvent | Heartbeat]:
        return self._run()

    async def _run(self) -> AsyncIterator[RevocationEvent | Heartbeat]:
        ctx, hub = self._ctx, self._ctx.hub
        ask = True
        while not hub.draining and not (ask and await self._stop()):
            # Captured before the read: a wake-up for anything newer is never missed.
            seen = hub.latest
            events = await hub.tail.since(self.cursor, seen=seen, now=ctx.now(), limit=PAGE_SIZE)
            for event in events:
                self.cursor = event.cursor
                yield event
            if len(events) == PAGE_SIZE:
                continue
            yield Heartbeat(latest_cursor=max(seen, self.cursor), server_time=ctx.now())
            ask = not await hub.wait(seen, ctx.settings.feed_heartbeat)
