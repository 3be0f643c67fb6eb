"""Text for people: terminal-safe strings, UTC dates and relative times."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

__all__ = ["date_phrase", "duration", "printable", "show_value", "utc"]

_MINUTE = 60
_HOUR = 3600
_TWO_DAYS = 2 * 86400


def printable(text: str) -> str:
    """``text`` with control, format and other invisible characters escaped.

    Token contents are attacker-chosen: an ESC or a bidi override printed as-is
    could rewrite what the terminal shows.
    """
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


def show_value(value: Any) -> str:
    """A JSON value on one line: strings bare, everything else as JSON."""
    if isinstance(value, str):
        return printable(value)
    return printable(json.dumps(value, ensure_ascii=False))


def utc(timestamp: float) -> str:
    """``2026-11-29 05:40:00 UTC``; ``"out of range"`` for a date no calendar has."""
    try:
        when = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return "out of range"
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float) -> str:
    """A rough span, rounded down: ``42 s``, ``4 min``, ``3 h``, ``12 d``."""
    seconds = abs(seconds)
    if seconds < _MINUTE:
        return f"{math.floor(seconds)} s"
    if seconds < _HOUR:
        return f"{math.floor(seconds / _MINUTE)} min"
    if seconds < _TWO_DAYS:
        return f"{math.floor(seconds / _HOUR)} h"
    return f"{math.floor(seconds / 86400)} d"


def date_phrase(claim: str, timestamp: float, now: float) -> str:
    """What a NumericDate claim means from ``now``: ``expires in 4 min``, ``issued 2 s ago``…"""
    delta = timestamp - now
    if not math.isfinite(delta) or abs(delta) > 1e12:
        return "out of range"
    span = duration(delta)
    future = delta > 0
    if claim == "exp":
        return f"expires in {span}" if future else f"expired {span} ago"
    if claim == "nbf":
        return f"becomes valid in {span}" if future else f"valid since {span} ago"
    if claim == "iat":
        return f"issued {span} in the future" if future else f"issued {span} ago"
    if claim == "auth_time":
        return f"authenticated {span} in the future" if future else f"authenticated {span} ago"
    return f"in {span}" if future else f"{span} ago"
