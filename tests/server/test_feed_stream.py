"""FeedStream: its cursor, paging and heartbeat guarantees, without HTTP."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from authmesh.revocation import RevocationEvent
from authmesh.server.feed.page import PAGE_SIZE
from authmesh.server.feed.stream import FeedStream, Heartbeat
from authmesh.server.feed.tail import FeedTail
from support.revocation_log import Log

HEARTBEAT = 2.0
NOW = 100.0


class Hub:
    """The part of FeedHub a stream uses; ``on_wait`` plays what happens while it waits."""

    def __init__(self, log: Log, on_wait: Any) -> None:
        self.latest = len(log.events)
        self.draining = False
        self.tail = FeedTail(log.read)
        self.tail.reset(0)
        self.waits: list[tuple[int, float]] = []
        self._on_wait = on_wait

    async def wait(self, seen: int, timeout: float) -> None:
        self.waits.append((seen, timeout))
        self._on_wait(self)


def _context(hub: Hub) -> Any:
    return SimpleNamespace(
        hub=hub, now=lambda: NOW, settings=SimpleNamespace(feed_heartbeat=HEARTBEAT)
    )


async def _collect(stream: FeedStream) -> list[RevocationEvent | Heartbeat]:
    return [item async for item in stream]


def _drain(hub: Hub) -> None:
    hub.draining = True


async def test_pages_arrive_in_cursor_order_then_one_heartbeat() -> None:
    log = Log()
    log.write(2 * PAGE_SIZE + 34)
    hub = Hub(log, _drain)
    stream = FeedStream(_context(hub), 0)
    items = await _collect(stream)
    events, beats = items[:-1], items[-1]
    # No heartbeat between full pages: the next page is read at once.
    assert [e.cursor for e in events if isinstance(e, RevocationEvent)] == list(
        range(1, 2 * PAGE_SIZE + 35)
    )
    assert beats == Heartbeat(latest_cursor=2 * PAGE_SIZE + 34, server_time=NOW)
    assert stream.cursor == 2 * PAGE_SIZE + 34
    assert hub.waits == [(2 * PAGE_SIZE + 34, HEARTBEAT)]


async def test_resumes_after_its_cursor_and_wakes_for_new_events() -> None:
    log = Log()
    log.write(5)
    rounds = iter([3, 0])

    def on_wait(hub: Hub) -> None:
        added = next(rounds)
        if added:
            hub.latest = log.write(added)
        else:
            hub.draining = True

    hub = Hub(log, on_wait)
    items = await _collect(FeedStream(_context(hub), 3))
    assert items == [
        log.events[3],
        log.events[4],
        Heartbeat(latest_cursor=5, server_time=NOW),
        *log.events[5:8],
        Heartbeat(latest_cursor=8, server_time=NOW),
    ]


async def test_an_idle_stream_beats_every_wait() -> None:
    log = Log()
    beats = iter(range(3))

    def on_wait(hub: Hub) -> None:
        if next(beats) == 2:
            hub.draining = True

    hub = Hub(log, on_wait)
    items = await _collect(FeedStream(_context(hub), 0))
    assert items == [Heartbeat(latest_cursor=0, server_time=NOW)] * 3
    assert [timeout for _, timeout in hub.waits] == [HEARTBEAT] * 3


async def test_stop_ends_the_stream_before_any_read() -> None:
    log = Log()
    log.write(3)
    hub = Hub(log, _drain)

    async def gone() -> bool:
        return True

    assert await _collect(FeedStream(_context(hub), 0, stop=gone)) == []
    assert log.reads == 0
