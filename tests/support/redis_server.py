"""The test Redis at 127.0.0.1:6379: its URL, and a skip without it (a failure in CI)."""

from __future__ import annotations

import os
import socket

import pytest

__all__ = ["REDIS_URL", "require_redis"]

REDIS_URL = "redis://127.0.0.1:6379/0"


def require_redis() -> None:
    """Skip the calling test when nothing listens on Redis's port; fail it under ``CI``."""
    with socket.socket() as sock:
        sock.settimeout(1)
        if sock.connect_ex(("127.0.0.1", 6379)) == 0:
            return
    reason = "Redis at 127.0.0.1:6379 is not running"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must provide it")
    pytest.skip(reason)
