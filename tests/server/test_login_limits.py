"""Rate limits and login-failure tracking: one contract, run on every backend.

The contract tests run on the in-process limiter and on Redis (the real server
at 127.0.0.1:6379), both with a fake clock. Redis tests use a unique key prefix
and delete their keys afterwards. Without Redis they are skipped, except under
CI (the ``CI`` environment variable), where Redis must be there and its absence
fails the run. What only Redis does is tested in test_login_limits_redis.py.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

import authmesh.server.login_limits as login_limits
from authmesh.errors import ConfigError
from authmesh.server.login_limits import (
    Decision,
    MemoryRateLimiter,
    RateLimitConfig,
    RateLimiter,
    RedisRateLimiter,
)
from authmesh.testing import FakeClock
from support.login_limits import (
    ACCOUNT,
    CLOCK_START,
    CONFIG,
    delete_prefixed,
    fail,
    redis_or_skip,
)


@dataclass
class Backend:
    limiter: RateLimiter
    clock: FakeClock


@pytest.fixture
def prefix() -> str:
    return f"authmesh-test:{uuid.uuid4().hex}:"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def backend(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Backend]:
    clock = FakeClock(CLOCK_START)
    if request.param == "memory":
        yield Backend(MemoryRateLimiter(CONFIG, clock=clock), clock)
        return
    client = await redis_or_skip()
    try:
        yield Backend(RedisRateLimiter(client, CONFIG, prefix=prefix, clock=clock), clock)
    finally:
        await delete_prefixed(client, prefix)
        await client.aclose()


SUBMODULES = sorted(
    name
    for _, name, _ in pkgutil.iter_modules(login_limits.__path__, "authmesh.server.login_limits.")
)
MODULES = ["authmesh.server.login_limits", *SUBMODULES]


@pytest.mark.parametrize("module_name", MODULES)
def test_exports_are_all(module_name: str) -> None:
    module = importlib.import_module(module_name)
    public = {n for n in vars(module) if not n.startswith("_")}
    assert set(module.__all__) <= public
    assert sorted(module.__all__) == module.__all__


def test_both_backends_implement_the_protocol() -> None:
    def accepts(limiter: RateLimiter) -> RateLimiter:
        return limiter

    accepts(MemoryRateLimiter())
    for name in ("hit", "check", "record_failure", "reset", "unlock"):
        assert asyncio.iscoroutinefunction(getattr(MemoryRateLimiter, name))
        assert asyncio.iscoroutinefunction(getattr(RedisRateLimiter, name))


# -- config ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"free_failures": -1},
        {"lock_after": 0},
        {"base_delay": 0},
        {"base_delay": 10, "max_delay": 5},
        {"lock_seconds": 0},
        {"failure_memory": 10, "max_delay": 60},
    ],
    ids=["free<0", "lock0", "base0", "base>max", "lock-seconds0", "memory<max-delay"],
)
def test_config_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RateLimitConfig(**kwargs)


def test_delay_schedule_doubles_and_is_capped() -> None:
    config = RateLimitConfig(free_failures=5, base_delay=1.0, max_delay=300.0)
    delays = [config.delay_after(n) for n in range(1, 16)]
    assert delays == [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert config.delay_after(10_000) == 300.0


def test_default_config_matches_the_server_settings_defaults() -> None:
    config = RateLimitConfig()
    assert (config.free_failures, config.lock_after, config.lock_seconds) == (5, 20, 900.0)


# -- request limiter (contract) -------------------------------------------------------


async def test_hit_allows_limit_then_denies(backend: Backend) -> None:
    limiter = backend.limiter
    results = [await limiter.hit("ip:192.0.2.1", 5, 10.0) for _ in range(7)]
    assert [d.allowed for d in results] == [True] * 5 + [False] * 2
    # One request refills every window / limit = 2 s.
    assert results[5].retry_after == pytest.approx(2.0)
    assert not results[5].locked


async def test_hit_refills_smoothly(backend: Backend) -> None:
    limiter, clock = backend.limiter, backend.clock
    for _ in range(5):
        assert (await limiter.hit("ip:192.0.2.1", 5, 10.0)).allowed
    denied = await limiter.hit("ip:192.0.2.1", 5, 10.0)
    clock.advance(denied.retry_after - 0.01)
    assert not (await limiter.hit("ip:192.0.2.1", 5, 10.0)).allowed
    clock.advance(0.02)
    assert (await limiter.hit("ip:192.0.2.1", 5, 10.0)).allowed
    assert not (await limiter.hit("ip:192.0.2.1", 5, 10.0)).allowed
    clock.advance(10.0)
    assert [(await limiter.hit("ip:192.0.2.1", 5, 10.0)).allowed for _ in range(6)] == [
        True
    ] * 5 + [False]


async def test_hit_keys_and_limits_are_independent(backend: Backend) -> None:
    limiter = backend.limiter
    assert (await limiter.hit("ip:192.0.2.1", 1, 60.0)).allowed
    assert not (await limiter.hit("ip:192.0.2.1", 1, 60.0)).allowed
    assert (await limiter.hit("ip:192.0.2.2", 1, 60.0)).allowed
    assert (await limiter.hit("ip:192.0.2.1", 2, 60.0)).allowed
    assert (await limiter.hit("ip:192.0.2.1", 1, 30.0)).allowed


@pytest.mark.parametrize("limit", [3, 7, 10, 1000], ids=lambda n: f"limit{n}")
async def test_hit_exact_limit_despite_float_rounding(backend: Backend, limit: int) -> None:
    results = [(await backend.limiter.hit("ip:x", limit, 1.0)).allowed for _ in range(limit + 1)]
    assert results.count(True) == limit
    assert results[-1] is False


@pytest.mark.parametrize(("limit", "window"), [(0, 1.0), (-1, 1.0), (1, 0.0), (1, -5.0)], ids=str)
async def test_hit_rejects_bad_arguments(backend: Backend, limit: int, window: float) -> None:
    with pytest.raises(ValueError):
        await backend.limiter.hit("ip:x", limit, window)


# -- failure tracker (contract) -------------------------------------------------------


async def test_free_failures_then_exponential_back_off(backend: Backend) -> None:
    limiter, clock = backend.limiter, backend.clock
    assert await limiter.check(ACCOUNT) == Decision(allowed=True)
    waits = []
    for _ in range(CONFIG.lock_after - 1):
        decision = await limiter.record_failure(ACCOUNT)
        waits.append(decision.retry_after)
        assert decision.allowed is (decision.retry_after == 0)
        check = await limiter.check(ACCOUNT)
        assert check.allowed is decision.allowed
        assert check.retry_after == pytest.approx(decision.retry_after)
        clock.advance(decision.retry_after)
        assert (await limiter.check(ACCOUNT)).allowed
    # 3 free, then 1, 2, 4, 8 (the cap), 8 …
    assert waits == [0, 0, 0, 1, 2, 4, 8, 8, 8]


async def test_check_during_back_off_counts_down(backend: Backend) -> None:
    limiter, clock = backend.limiter, backend.clock
    await fail(limiter, CONFIG.free_failures + 3)  # wait 4 s
    clock.advance(1.5)
    decision = await limiter.check(ACCOUNT)
    assert not decision.allowed and not decision.locked
    assert decision.retry_after == pytest.approx(2.5)


async def test_lock_after_m_failures(backend: Backend) -> None:
    limiter, clock = backend.limiter, backend.clock
    decisions = await fail(limiter, CONFIG.lock_after)
    assert not any(d.locked for d in decisions[:-1])
    assert decisions[-1] == Decision(allowed=False, retry_after=600.0, locked=True)
    clock.advance(100.0)
    check = await limiter.check(ACCOUNT)
    assert check.locked and not check.allowed
    assert check.retry_after == pytest.approx(500.0)
    # Failing while locked neither extends the lock nor counts.
    again = await limiter.record_failure(ACCOUNT)
    assert again.locked and again.retry_after == pytest.approx(500.0)


async def test_lock_expires_and_starts_a_fresh_count(backend: Backend) -> None:
    limiter, clock = backend.limiter, backend.clock
    await fail(limiter, CONFIG.lock_after)
    clock.advance(CONFIG.lock_seconds)
    assert await limiter.check(ACCOUNT) == Decision(allowed=True)
    fresh = await fail(limiter, CONFIG.free_failures)
    assert all(d.allowed for d in fresh)
    assert (await limiter.record_failure(ACCOUNT)).retry_after == 1.0


async def test_reset_on_success_clears_back_off_but_not_a_lock(backend: Backend) -> None:
    limiter = backend.limiter
    await fail(limiter, CONFIG.free_failures + 2)
    assert not (await limiter.check(ACCOUNT)).allowed
    await limiter.reset(ACCOUNT)
    assert (await limiter.check(ACCOUNT)).allowed
    assert all(d.allowed for d in await fail(limiter, CONFIG.free_failures))

    await fail(limiter, CONFIG.lock_after)
    await limiter.reset(ACCOUNT)
    assert (await limiter.check(ACCOUNT)).locked


async def test_admin_unlock_lifts_the_lock_and_the_count(backend: Backend) -> None:
    limiter = backend.limiter
    await fail(limiter, CONFIG.lock_after)
    assert (await limiter.check(ACCOUNT)).locked
    await limiter.unlock(ACCOUNT)
    assert await limiter.check(ACCOUNT) == Decision(allowed=True)
    assert all(d.allowed for d in await fail(limiter, CONFIG.free_failures))
    await limiter.unlock("acct:nobody")  # unlocking an unknown key is harmless


async def test_failures_are_forgotten_after_failure_memory(backend: Backend) -> None:
    limiter, clock = backend.limiter, backend.clock
    await fail(limiter, CONFIG.free_failures + 1)
    clock.advance(CONFIG.failure_memory)
    assert (await limiter.check(ACCOUNT)).allowed
    assert all(d.allowed for d in await fail(limiter, CONFIG.free_failures))


async def test_failure_keys_are_independent(backend: Backend) -> None:
    limiter = backend.limiter
    await fail(limiter, CONFIG.lock_after, key="acct:alice")
    assert (await limiter.check("acct:alice")).locked
    assert (await limiter.check("acct:bob")).allowed
    assert (await limiter.check("ip:192.0.2.1")).allowed
    # Request counters and failure records of one key do not mix.
    assert (await limiter.hit("acct:alice", 1, 60.0)).allowed


# -- in-process only ------------------------------------------------------------------


async def test_memory_is_bounded_and_evicts_oldest() -> None:
    clock = FakeClock(CLOCK_START)
    limiter = MemoryRateLimiter(CONFIG, clock=clock, max_keys=100)
    for i in range(1000):
        await limiter.hit(f"ip:10.0.{i // 256}.{i % 256}", 1, 60.0)
        await limiter.record_failure(f"acct:user{i}")
    assert len(limiter) <= 200
    # The most recent keys are still limited.
    assert not (await limiter.hit("ip:10.0.3.231", 1, 60.0)).allowed


async def test_memory_sweeps_expired_before_evicting_live_keys() -> None:
    clock = FakeClock(CLOCK_START)
    limiter = MemoryRateLimiter(CONFIG, clock=clock, max_keys=100)
    await limiter.hit("ip:keep", 1, 600.0)  # the oldest entry, live for 600 s
    for i in range(98):
        await limiter.hit(f"ip:old{i}", 1, 1.0)  # live for 1 s
    clock.advance(2.0)
    for i in range(50):
        await limiter.hit(f"ip:new{i}", 1, 60.0)
    # Plain least-recently-used eviction would have dropped "ip:keep" first.
    assert not (await limiter.hit("ip:keep", 1, 600.0)).allowed
    assert len(limiter) == 51


def test_memory_rejects_tiny_bound() -> None:
    with pytest.raises(ConfigError):
        MemoryRateLimiter(max_keys=1)
