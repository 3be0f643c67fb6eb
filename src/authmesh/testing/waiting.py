"""Bounded waits on a condition, for threads and for event loops, instead of sleeps."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

__all__ = ["async_wait_for", "wait_for"]


def _describe(predicate: Callable[..., object], message: str | None) -> str:
    if message:
        return message
    name = getattr(predicate, "__qualname__", repr(predicate)).rpartition("<locals>.")[2]
    return "condition" if name == "<lambda>" else name


def _timed_out(predicate: Callable[..., object], message: str | None, timeout: float) -> str:
    return f"{_describe(predicate, message)} not met within {timeout} s"


def wait_for(
    predicate: Callable[[], object],
    timeout: float = 5.0,
    interval: float = 0.01,
    *,
    message: str | None = None,
) -> float:
    """Poll ``predicate()`` until it is true; the seconds it took.

    Raises:
        AssertionError: still false after ``timeout`` seconds; the message names
            ``message`` (or the predicate) and the timeout.
    """
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(_timed_out(predicate, message, timeout))
        time.sleep(interval)
    return time.monotonic() - start


async def async_wait_for(
    predicate: Callable[[], object | Awaitable[object]],
    timeout: float = 5.0,
    interval: float = 0.01,
    *,
    message: str | None = None,
) -> float:
    """:func:`wait_for` on an event loop: ``predicate`` may be sync or return an awaitable.

    Raises:
        AssertionError: still false after ``timeout`` seconds.
    """
    start = time.monotonic()
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(_timed_out(predicate, message, timeout))
        await asyncio.sleep(interval)
