"""How the operator commands print times."""

from __future__ import annotations

import datetime as dt

__all__ = ["utc_time"]


def utc_time(timestamp: float | None, *, missing: str = "-") -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC, or ``missing`` for no time."""
    if timestamp is None:
        return missing
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
