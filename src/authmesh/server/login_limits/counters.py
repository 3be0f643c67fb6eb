"""How both backends name and size a counter: key digests, and GCRA in whole microseconds."""

from __future__ import annotations

import hashlib
import math

__all__ = ["MICROSECONDS", "gcra", "key_digest"]

#: Microseconds in a second: GCRA counts in whole microseconds (see :func:`gcra`).
MICROSECONDS = 1_000_000


def key_digest(key: str) -> str:
    """The digest a backend stores instead of ``key``: short, fixed-size, no usernames."""
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def gcra(key: str, limit: int, window: float) -> tuple[str, int, int]:
    """The counter's digest, the emission interval and the burst capacity in µs.

    Whole microseconds keep the arithmetic exact (integers below 2**53 are exact in
    a double, Lua's only number type too): with float seconds, ``limit`` additions
    of ``window / limit`` to an epoch timestamp drift enough to refuse the
    ``limit``-th request of a burst. The interval is rounded up and the capacity
    is exactly ``limit`` intervals, so a burst admits ``limit`` requests, never more.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if not window > 0:
        raise ValueError("window must be positive")
    interval = max(1, math.ceil(window * MICROSECONDS / limit))
    return key_digest(f"{limit}/{window!r}/{key}"), interval, interval * limit
