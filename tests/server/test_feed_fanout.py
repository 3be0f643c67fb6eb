"""What keeps one replica's fan-out to many feed streams cheap, without HTTP.

One socket write per stream per wake-up (events with their heartbeat), no
task per wait, and no disconnect check on a wake-up for new events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

from authmesh.revocation import RevocationEvent
from authmesh.server.feed.hub import FeedHub
from authmesh.server.feed.page import PAGE_SIZE
from authmesh.server.feed.stream import FeedStream, Heartbeat
from authmesh.server.feed.tail import FeedTail
from authmesh.server.routes.feed import ClientGone, _event_frame, _frames, _heartbeat_frame, _sse
from support.revocation_log import Log

NOW = 100.0


def _event(cursor: int) -> RevocationEvent:
    return RevocationEvent(
        kind="sub", value=f"u{cursor}", not_before=NOW, expires_at=NOW + 60, cursor=cursor
    )


class _Items:
    def __init__(self, items: list[RevocationEvent | Heartbeat]) -> None:
        self.items = items
        self.cursor = 0

    async def _run(self) -> AsyncIterator[RevocationEvent | Heartbeat]:
        for item in self.items:
            yield item

    def __aiter__(self) -> AsyncIterator[RevocationEvent | Heartbeat]:
        return self._run()


async def _chunks(
    items: list[RevocationEvent | Heartbeat], positions: list[int] | None = None
) -> list[bytes]:
    """The chunks written; ``positions`` gets the follower position after each."""
    seen = positions if positions is not None else []
    metrics: Any = SimpleNamespace(
        feed_streams=SimpleNamespace(inc=lambda: None, dec=lambda: None),
        followers=SimpleNamespace(
            open=lambda cursor: "f", advance=lambda f, c: seen.append(c), close=lambda f: None
        ),
    )
    feed: Any = _Items(items)
    ctx: Any = SimpleNamespace(now=lambda: NOW)
    follower: Any = SimpleNamespace(
        sent_event=lambda cursor, at: None, sent_heartbeat=lambda at, cursor: None
    )
    return [chunk async for chunk in _frames(ctx, feed, follower, metrics)]


async def test_events_go_out_with_their_heartbeat_in_one_write() -> None:
    beat = Heartbeat(latest_cursor=2, server_time=NOW)
    positions: list[int] = []
    chunks = await _chunks([_event(1), _event(2), beat, beat], positions)
    assert positions == [2, 2]
    assert chunks[0] == b"retry: 1000\n\n"
    assert chunks[1].count(b"event: revocation") == 2
    assert chunks[1].endswith(
        b'event: heartbeat\ndata: {"latest_cursor":2,"server_time":100.0}\n\n'
    )
    assert chunks[1].index(b"id: 1\n") < chunks[1].index(b"id: 2\n")
    assert chunks[2].startswith(b"event: heartbeat")
    assert len(chunks) == 3


async def test_a_full_page_is_written_without_waiting_for_the_next() -> None:
    items: list[RevocationEvent | Heartbeat] = [_event(c) for c in range(1, PAGE_SIZE + 3)]
    positions: list[int] = []
    beat = Heartbeat(latest_cursor=PAGE_SIZE + 2, server_time=NOW)
    chunks = await _chunks([*items, beat], positions)
    assert positions == [PAGE_SIZE, PAGE_SIZE + 2]
    assert chunks[1].count(b"event: revocation") == PAGE_SIZE
    assert chunks[2].count(b"event: revocation") == 2


class _Hub:
    """Wakes for new events twice, then stays quiet (a heartbeat interval), then drains."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.latest = len(log.events)
        self.draining = False
        self.tail = FeedTail(log.read)
        self.tail.reset(0)
        self.rounds = 0

    async def wait(self, seen: int, timeout: float) -> bool:
        self.rounds += 1
        if self.rounds <= 2:
            self.log.write(1)
            self.latest = len(self.log.events)
            return True
        if self.rounds == 3:
            return False
        self.draining = True
        return True


async def test_the_client_is_asked_about_only_at_the_start_and_after_quiet_intervals() -> None:
    log = Log()
    hub = _Hub(log)
    asked: list[int] = []

    async def gone() -> bool:
        asked.append(hub.rounds)
        return False

    ctx: Any = SimpleNamespace(hub=hub, now=lambda: NOW, settings=SimpleNamespace(feed_heartbeat=2))
    items = [item async for item in FeedStream(ctx, 0, stop=gone)]
    assert [i.cursor for i in items if isinstance(i, RevocationEvent)] == [1, 2]
    # At the start, and after the quiet round (3); never after the two wake-ups.
    assert asked == [0, 3]


async def test_the_hub_says_whether_it_was_woken_or_timed_out() -> None:
    db: Any = SimpleNamespace(schema=None)
    settings: Any = SimpleNamespace(feed_max_streams_per_client=20)
    hub = FeedHub(db, settings=settings, clock=lambda: NOW)
    assert await hub.wait(0, 0.01) is False
    waiting = asyncio.create_task(hub.wait(0, 5))
    await asyncio.sleep(0)
    hub._advance(1)
    assert await asyncio.wait_for(waiting, 1) is True
    assert await hub.wait(0, 5) is True  # already newer: no wait at all


def test_a_heartbeat_frame_is_what_the_json_encoder_would_write() -> None:
    for cursor, server_time in [(0, 0.0), (7, NOW), (2**62, 1764500000.123456), (3, 1764500000)]:
        beat = Heartbeat(latest_cursor=cursor, server_time=server_time)
        assert _heartbeat_frame(beat) == _sse("heartbeat", beat.to_json())


def test_an_event_frame_is_encoded_once_and_shared() -> None:
    first, again = _event_frame(_event(41)), _event_frame(_event(41))
    assert first is again
    assert first == _sse("revocation", _event(41).to_json(), 41)
    other = RevocationEvent(kind="sid", value="s41", not_before=NOW, expires_at=NOW + 60, cursor=41)
    assert b'"value":"s41"' in _event_frame(other)  # same cursor, another log: its own frame


async def test_the_disconnect_check_reads_the_flag_the_response_listener_sets() -> None:
    asked: list[str] = []

    async def is_disconnected() -> bool:
        asked.append("request")
        return True

    messages = [{"type": "http.request", "body": b""}, {"type": "http.disconnect"}]

    async def receive() -> Any:
        return messages.pop(0)

    request: Any = SimpleNamespace(is_disconnected=is_disconnected)
    # No listener reading the connection (an ASGI server of spec 2.4): ask the request.
    assert await ClientGone(request)() is True and asked == ["request"]
    gone = ClientGone(request)
    listen = gone.watch(receive)
    await listen()
    assert await gone() is False  # a listener is reading, and has seen no disconnect
    await listen()
    assert await gone() is True
    assert asked == ["request"]  # never asked the request again
