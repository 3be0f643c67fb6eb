"""FailoverRateLimiter: Redis while it answers, this process's limits (or a refusal) while not.

Redis is reached through a :class:`TcpProxy` the tests kill; the limiter's clock is
a FakeClock, so the wait before Redis is tried again passes without sleeping.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from authmesh.server.login_limits import MemoryRateLimiter, RateLimiterUnavailable, RedisRateLimiter
from authmesh.server.login_limits.failover import FailoverRateLimiter
from authmesh.testing import FakeClock, TcpProxy
from support.login_limits import ACCOUNT, CONFIG, delete_prefixed, redis_or_skip

pytestmark = pytest.mark.redis


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[TcpProxy, RedisRateLimiter]]:
    direct = await redis_or_skip()
    prefix = f"authmesh-test:{uuid.uuid4().hex}:"
    with TcpProxy("127.0.0.1", 6379) as proxy:
        limiter = RedisRateLimiter.from_url(
            f"redis://127.0.0.1:{proxy.port}/0", CONFIG, prefix=prefix, timeout=0.5
        )
        try:
            yield proxy, limiter
        finally:
            await limiter.aclose()
            await delete_prefixed(direct, prefix)
            await direct.aclose()


async def test_falls_back_while_down_and_returns_after_the_interval(
    proxied: tuple[TcpProxy, RedisRateLimiter],
) -> None:
    proxy, shared = proxied
    local = MemoryRateLimiter(CONFIG)
    clock = FakeClock(0)
    limiter = FailoverRateLimiter(shared, local, retry_interval=5, clock=clock)
    assert (await limiter.hit("ip:a", 2, 60.0)).allowed
    assert len(local) == 0 and not limiter.redis_down

    proxy.kill()
    answers = [await limiter.hit("ip:a", 2, 60.0) for _ in range(3)]

    # This process counts from zero: two allowed, then refused, as its own limit says.
    assert [a.allowed for a in answers] == [True, True, False]
    assert limiter.redis_down and len(local) == 1
    assert limiter.retry_after() == 5

    proxy.restore()
    clock.advance(4)  # not yet: Redis is left alone for the interval
    await limiter.check(ACCOUNT)
    assert limiter.redis_down
    clock.advance(1)
    # Redis again: its count (one hit before the outage) still allows the second.
    assert (await limiter.hit("ip:a", 2, 60.0)).allowed
    assert not limiter.redis_down


async def test_without_a_fallback_it_refuses_at_once_while_down(
    proxied: tuple[TcpProxy, RedisRateLimiter],
) -> None:
    proxy, shared = proxied
    clock = FakeClock(0)
    limiter = FailoverRateLimiter(shared, None, retry_interval=5, clock=clock)
    proxy.kill()

    for _ in range(3):
        with pytest.raises(RateLimiterUnavailable):
            await limiter.check(ACCOUNT)
    assert limiter.redis_down

    proxy.restore()
    assert await limiter.ping()  # a health probe ends the outage before the interval
    assert (await limiter.check(ACCOUNT)).allowed


async def test_unlock_always_asks_redis(proxied: tuple[TcpProxy, RedisRateLimiter]) -> None:
    proxy, shared = proxied
    local = MemoryRateLimiter(CONFIG)
    limiter = FailoverRateLimiter(shared, local, clock=FakeClock(0))
    for _ in range(CONFIG.lock_after):
        await limiter.record_failure(ACCOUNT)
    assert (await limiter.check(ACCOUNT)).locked
    proxy.kill()

    # The lock lives in Redis: lifting it only here would be a lie.
    with pytest.raises(RateLimiterUnavailable):
        await limiter.unlock(ACCOUNT)

    proxy.restore()
    assert (await shared.check(ACCOUNT)).locked
    await limiter.unlock(ACCOUNT)
    assert (await shared.check(ACCOUNT)).allowed
