"""The Redis login limiter beyond the shared contract: TTLs, its clock, sharing, failures.

These tests need the real Redis at 127.0.0.1:6379 and use a unique key prefix,
deleted afterwards. Without Redis they are skipped, except under CI (the ``CI``
environment variable), where its absence fails the run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from authmesh.errors import OperatorError
from authmesh.server.login_limits import RateLimiterUnavailable, RedisRateLimiter
from authmesh.testing import FakeClock
from support.login_limits import (
    ACCOUNT,
    CLOCK_START,
    CONFIG,
    REDIS_URL,
    delete_prefixed,
    fail,
    redis_or_skip,
)


@pytest.fixture
def prefix() -> str:
    return f"authmesh-test:{uuid.uuid4().hex}:"


@pytest.fixture
async def redis_client(prefix: str) -> AsyncIterator[Redis]:
    client = await redis_or_skip()
    try:
        yield client
    finally:
        await delete_prefixed(client, prefix)
        await client.aclose()


@pytest.mark.redis
async def test_redis_keys_have_ttls_and_hide_the_caller_keys(
    redis_client: Redis, prefix: str
) -> None:
    limiter = RedisRateLimiter(redis_client, CONFIG, prefix=prefix)
    await limiter.hit("ip:192.0.2.1", 5, 10.0)
    await fail(limiter, CONFIG.free_failures + 1, key="acct:alice")
    await fail(limiter, CONFIG.lock_after, key="acct:mallory")
    keys = sorted([k.decode() async for k in redis_client.scan_iter(match=f"{prefix}*")])
    assert len(keys) == 3
    for key in keys:
        assert "alice" not in key and "mallory" not in key and "192.0.2.1" not in key
        ttl_ms = await redis_client.pttl(key)
        assert ttl_ms > 0
        if ":hit:" in key:
            assert ttl_ms <= 3_000  # one hit of 5 per 10 s: 2 s, plus a second of margin
        elif ":lock:" in key:
            assert ttl_ms <= CONFIG.lock_seconds * 1000
        else:
            assert ttl_ms <= CONFIG.failure_memory * 1000


@pytest.mark.redis
async def test_redis_server_clock_mode(redis_client: Redis, prefix: str) -> None:
    limiter = RedisRateLimiter(redis_client, CONFIG, prefix=prefix)  # clock=None: Redis TIME
    results = [await limiter.hit("ip:x", 3, 60.0) for _ in range(4)]
    assert [d.allowed for d in results] == [True, True, True, False]
    assert 0 < results[-1].retry_after <= 20.0
    decisions = await fail(limiter, CONFIG.free_failures + 1)
    assert decisions[-1].retry_after == 1.0
    check = await limiter.check(ACCOUNT)
    assert not check.allowed and 0 < check.retry_after <= 1.0


@pytest.mark.redis
async def test_two_instances_share_one_limit(redis_client: Redis, prefix: str) -> None:
    """Two limiters on two connections pools, as two server processes would have."""
    other = await redis_or_skip()
    try:
        a = RedisRateLimiter(redis_client, CONFIG, prefix=prefix)
        b = RedisRateLimiter(other, CONFIG, prefix=prefix)
        hits = await asyncio.gather(
            *(limiter.hit("ip:198.51.100.7", 10, 60.0) for limiter in [a, b] * 20)
        )
        assert sum(d.allowed for d in hits) == 10

        failures = await asyncio.gather(
            *(limiter.record_failure(ACCOUNT) for limiter in [a, b] * 4)
        )
        assert sum(d.allowed for d in failures) == CONFIG.free_failures
        assert not (await a.check(ACCOUNT)).allowed
        assert not (await b.check(ACCOUNT)).allowed

        await asyncio.gather(*(a.record_failure(ACCOUNT) for _ in range(CONFIG.lock_after)))
        assert (await b.check(ACCOUNT)).locked
        await a.unlock(ACCOUNT)
        assert (await b.check(ACCOUNT)).allowed
    finally:
        await other.aclose()


@pytest.mark.redis
async def test_redis_works_with_decoded_responses(prefix: str) -> None:
    client = await redis_or_skip()
    await client.aclose()
    decoded = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        limiter = RedisRateLimiter(decoded, CONFIG, prefix=prefix, clock=FakeClock(CLOCK_START))
        assert (await limiter.hit("ip:x", 1, 5.0)).allowed
        assert (await limiter.hit("ip:x", 1, 5.0)).retry_after == pytest.approx(5.0)
        await fail(limiter, CONFIG.lock_after)
        assert (await limiter.check(ACCOUNT)).locked
    finally:
        await delete_prefixed(decoded, prefix)
        await decoded.aclose()


@pytest.mark.redis
async def test_from_url_owns_its_client(prefix: str) -> None:
    client = await redis_or_skip()
    await client.aclose()
    limiter = RedisRateLimiter.from_url(REDIS_URL, CONFIG, prefix=prefix)
    try:
        assert (await limiter.check("acct:someone")).allowed
    finally:
        await limiter.aclose()


@pytest.mark.parametrize(
    "call",
    [
        lambda lim: lim.hit("ip:x", 1, 1.0),
        lambda lim: lim.check(ACCOUNT),
        lambda lim: lim.record_failure(ACCOUNT),
        lambda lim: lim.reset(ACCOUNT),
        lambda lim: lim.unlock(ACCOUNT),
    ],
    ids=["hit", "check", "record_failure", "reset", "unlock"],
)
async def test_unreachable_redis_is_an_operator_error(
    call: Callable[[RedisRateLimiter], Awaitable[object]],
) -> None:
    client = Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    limiter = RedisRateLimiter(client, CONFIG)
    try:
        with pytest.raises(RateLimiterUnavailable) as info:
            await call(limiter)
    finally:
        await client.aclose()
    assert isinstance(info.value, OperatorError)
    assert ACCOUNT not in str(info.value)
