"""FeedTail: one log read per wake-up for every caught-up stream, and no event missed."""

from __future__ import annotations

import asyncio
import random

from authmesh.server.feed.tail import FeedTail
from support.revocation_log import Log


async def drain(tail: FeedTail, cursor: int, seen: int, limit: int = 500) -> list[int]:
    """What one stream receives until caught up with ``seen``, as a FeedStream loops."""
    got: list[int] = []
    while True:
        events = await tail.since(cursor, seen=seen, now=0.0, limit=limit)
        got += [e.cursor for e in events]
        if events:
            cursor = events[-1].cursor
        if len(events) < limit:
            return got


async def test_caught_up_streams_share_one_read() -> None:
    log = Log()
    tail = FeedTail(log.read)
    tail.reset(log.write(3))
    seen = log.write()
    results = await asyncio.gather(
        *(tail.since(3, seen=seen, now=0.0, limit=500) for _ in range(20))
    )
    assert log.reads == 1
    assert all([e.cursor for e in r] == [4] for r in results)
    # Nothing new: no read at all.
    assert await tail.since(4, seen=seen, now=0.0, limit=500) == []
    assert log.reads == 1


async def test_a_stream_behind_the_tail_reads_the_log_itself() -> None:
    log = Log()
    tail = FeedTail(log.read)
    tail.reset(log.write(10))
    assert await drain(tail, 2, seen=10) == list(range(3, 11))
    assert tail.direct_reads == 1 and tail.shared_reads == 0


async def test_more_than_a_page_at_once_arrives_in_full() -> None:
    log = Log()
    tail = FeedTail(log.read, size=10_000)
    tail.reset(0)
    seen = log.write(1234)
    assert await drain(tail, 0, seen=seen) == list(range(1, 1235))
    assert tail.upto == seen


async def test_trimmed_tail_stays_complete() -> None:
    log = Log()
    tail = FeedTail(log.read, size=5)
    tail.reset(0)
    seen = log.write(12)
    assert await drain(tail, 0, seen=seen, limit=4) == list(range(1, 13))
    assert tail.start > 0
    # A stream that was at cursor 1 is behind the trimmed tail now and still gets everything.
    assert await drain(tail, 1, seen=seen, limit=4) == list(range(2, 13))


async def test_expired_events_are_left_out() -> None:
    log = Log()
    tail = FeedTail(log.read)
    tail.reset(0)
    log.write(2, expires_at=50.0)
    seen = log.write(1, expires_at=500.0)
    events = await tail.since(0, seen=seen, now=10.0, limit=500)
    assert [e.cursor for e in events] == [1, 2, 3]
    later = await tail.since(0, seen=seen, now=100.0, limit=500)
    assert [e.cursor for e in later] == [3]


async def test_random_interleavings_match_the_log() -> None:
    rng = random.Random(7)
    for _ in range(30):
        log = Log()
        tail = FeedTail(log.read, size=rng.choice([3, 10, 100]))
        tail.reset(log.write(rng.randint(0, 5)))
        cursors = [rng.randint(0, len(log.events)) for _ in range(6)]
        for _ in range(15):
            seen = log.write(rng.randint(0, 7))
            limit = rng.choice([2, 5, 500])
            got = await asyncio.gather(*(drain(tail, c, seen, limit) for c in cursors))
            for i, (start, received) in enumerate(zip(cursors, got, strict=True)):
                assert received == list(range(start + 1, seen + 1))
                cursors[i] = seen
