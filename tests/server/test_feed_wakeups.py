"""Wakeups: every stream's wait for news or its heartbeat, on shared timers."""

from __future__ import annotations

import asyncio

from authmesh.server.feed.wakeups import GRAIN, Wakeups


async def _started(wakeups: Wakeups, count: int, timeout: float) -> list[asyncio.Task[bool]]:
    tasks = [asyncio.create_task(wakeups.wait(timeout)) for _ in range(count)]
    while len(wakeups) < count:  # each task registers on its first step
        await asyncio.sleep(0)
    return tasks


async def test_news_ends_every_wait_with_true_and_leaves_no_timer() -> None:
    wakeups = Wakeups()
    loop = asyncio.get_running_loop()
    started = loop.time()
    tasks = await _started(wakeups, 200, 30.0)
    # Waits due within the same grain share one timer, not one each. The 200
    # deadlines spread over as long as the starts took (a few ms, more on a
    # loaded machine), which may straddle grain boundaries.
    grains_spanned = int((loop.time() - started) / GRAIN) + 2
    assert 1 <= len(wakeups._timers) <= grains_spanned
    wakeups.wake_all()
    assert await asyncio.wait_for(asyncio.gather(*tasks), 5) == [True] * 200
    assert len(wakeups) == 0 and not wakeups._timers and not wakeups._due


async def test_a_deadline_ends_the_wait_with_false_never_late_at_most_a_grain_early() -> None:
    wakeups = Wakeups()
    loop = asyncio.get_running_loop()
    for timeout in (0.01, 0.3):
        started = loop.time()
        assert await asyncio.wait_for(wakeups.wait(timeout), 5) is False
        # The loop's clock: a loaded machine may only make it later than asked.
        assert loop.time() - started >= timeout - GRAIN - 0.001
    assert not wakeups._timers and not wakeups._due


async def test_a_cancelled_wait_leaves_nothing_behind() -> None:
    wakeups = Wakeups()
    (task,) = await _started(wakeups, 1, 30.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(wakeups) == 0 and not wakeups._timers and not wakeups._due
