"""One page of the feed: the live events after a cursor (``GET /revocations``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from authmesh.revocation import RevocationEvent, RevocationEventJSON
from authmesh.server.context import ServerContext
from authmesh.store import revocations

__all__ = ["PAGE_SIZE", "FeedPage", "FeedPageJSON", "read_page"]

#: Events in a page when the reader does not ask for fewer; also a stream's read size.
PAGE_SIZE = 500


class FeedPageJSON(TypedDict):
    """The JSON body of ``GET /revocations``."""

    events: list[RevocationEventJSON]
    next_cursor: int
    has_more: bool
    latest_cursor: int
    server_time: float


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedPage:
    """Live events after a cursor, ascending, and where the log stands."""

    after: int
    limit: int
    events: list[RevocationEvent]
    latest_cursor: int
    server_time: float

    @property
    def next_cursor(self) -> int:
        """Where the next page starts: the last cursor returned, or the one asked for."""
        return self.events[-1].cursor if self.events else max(self.after, 0)

    @property
    def has_more(self) -> bool:
        """Whether the page is full, so more events may follow."""
        return len(self.events) == self.limit

    def to_json(self) -> FeedPageJSON:
        """The page as the feed sends it."""
        return {
            "events": [e.to_json() for e in self.events],
            "next_cursor": self.next_cursor,
            "has_more": self.has_more,
            "latest_cursor": self.latest_cursor,
            "server_time": self.server_time,
        }


async def read_page(ctx: ServerContext, after: int, limit: int = PAGE_SIZE) -> FeedPage:
    """The live events after ``after``, at most ``limit``; expired ones may be left out."""
    now = ctx.now()
    async with ctx.db.transaction() as session:
        latest = await revocations.latest_cursor(session)
        events = await revocations.events_since(session, after, now=now, limit=limit)
    return FeedPage(after=after, limit=limit, events=events, latest_cursor=latest, server_time=now)
