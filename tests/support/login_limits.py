"""The login-limit tests' shared pieces: their rules, a reachable Redis or a skip, clean-up."""

from __future__ import annotations

import os

import pytest
from redis.asyncio import Redis

from authmesh.server.login_limits import Decision, RateLimitConfig, RateLimiter

__all__ = [
    "ACCOUNT",
    "CLOCK_START",
    "CONFIG",
    "REDIS_URL",
    "delete_prefixed",
    "fail",
    "redis_or_skip",
]

REDIS_URL = "redis://127.0.0.1:6379/0"
CONFIG = RateLimitConfig(
    free_failures=3,
    base_delay=1.0,
    max_delay=8.0,
    lock_after=10,
    lock_seconds=600.0,
    failure_memory=3600.0,
)
ACCOUNT = "acct:alice"
#: Where the fake clocks of these tests start.
CLOCK_START = 1_000_000.0


async def redis_or_skip() -> Redis:
    """A client of the test Redis; skips the test without it (fails it under ``CI``)."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        reason = f"Redis at {REDIS_URL} is unreachable ({type(exc).__name__}: {exc})"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must provide it")
        pytest.skip(f"{reason}; set CI=1 to make this a failure")
    return client


async def delete_prefixed(client: Redis, prefix: str) -> None:
    """Delete every key under ``prefix``."""
    keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)


async def fail(limiter: RateLimiter, n: int, key: str = ACCOUNT) -> list[Decision]:
    """``n`` failed logins of ``key``; the limiter's answers."""
    return [await limiter.record_failure(key) for _ in range(n)]
