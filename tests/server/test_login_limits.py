"""Rate limits and login-failure tracking: one contract, run on every backend.

The contract tests run on the in-process limiter and on Redis (the real server
at 127.0.0.1:6379), both with a fake clock. Redis tests use a unique key prefix
and delete their keys afterwards. Without Redis they are skipped, except under
CI (the ``CI`` environment variable), where Redis must be there and its absence
fails the run.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import pkgutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

import authmesh.server.login_limits as login_limits
from authmesh.errors import ConfigError, OperatorError
from authmesh.server.login_limits import (
    Decision,
    MemoryRateLimiter,
    RateLimitConfig,
    RateLimiter,
    RateLimiterUnavailable,
    RedisRateLimiter,
)
from authmesh.testing import FakeClock

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


@dataclass
class Backend:
    limiter: RateLimiter
    clock: FakeClock


async def _redis_client() -> Redis:
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


@pytest.fixture
def prefix() -> str:
    return f"authmesh-test:{uuid.uuid4().hex}:"


async def _cleanup(client: Redis, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)


@pytest.fixture
async def redis_client(prefix: str) -> AsyncIterator[Redis]:
    client = await _redis_client()
    try:
        yield client
    finally:
        await _cleanup(client, prefix)
        await client.aclose()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def backend(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Backend]:
    clock = FakeClock(CLOCK_START)
    if request.param == "memory":
        yield Backend(MemoryRateLimiter(CONFIG, clock=clock), clock)
        return
    client = await _redis_client()
    try:
        yield Backend(RedisRateLimiter(client, CONFIG, prefix=prefix, clock=clock), clock)
    finally:
        await _cleanup(client, prefix)
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


async def _fail(limiter: RateLimiter, n: int, key: str = ACCOUNT) -> list[Decision]:
    return [await limiter.record_failure(key) for _ in range(n)]


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
    await _fail(limiter, CONFIG.free_failures + 3)  # wait 4 s
    clock.advance(1.5)
    decision = await limiter.check(ACCOUNT)
    assert not decision.allowed and not decision.locked
    assert decision.retry_after == pytest.approx(2.5)


async def test_lock_after_m_failures(backend: Backend) -> None:
    limiter, clock = backend.limiter, backend.clock
    decisions = await _fail(limiter, CONFIG.lock_after)
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
    await _fail(limiter, CONFIG.lock_after)
    clock.advance(CONFIG.lock_seconds)
    assert await limiter.check(ACCOUNT) == Decision(allowed=True)
    fresh = await _fail(limiter, CONFIG.free_failures)
    assert all(d.allowed for d in fresh)
    assert (await limiter.record_failure(ACCOUNT)).retry_after == 1.0


async def test_reset_on_success_clears_back_off_but_not_a_lock(backend: Backend) -> None:
    limiter = backend.limiter
    await _fail(limiter, CONFIG.free_failures + 2)
    assert not (await limiter.check(ACCOUNT)).allowed
    await limiter.reset(ACCOUNT)
    assert (await limiter.check(ACCOUNT)).allowed
    assert all(d.allowed for d in await _fail(limiter, CONFIG.free_failures))

    await _fail(limiter, CONFIG.lock_after)
    await limiter.reset(ACCOUNT)
    assert (await limiter.check(ACCOUNT)).locked


async def test_admin_unlock_lifts_the_lock_and_the_count(backend: Backend) -> None:
    limiter = backend.limiter
    await _fail(limiter, CONFIG.lock_after)
    assert (await limiter.check(ACCOUNT)).locked
    await limiter.unlock(ACCOUNT)
    assert await limiter.check(ACCOUNT) == Decision(allowed=True)
    assert all(d.allowed for d in await _fail(limiter, CONFIG.free_failures))
    await limiter.unlock("acct:nobody")  # unlocking an unknown key is harmless


async def test_failures_are_forgotten_after_failure_memory(backend: Backend) -> None:
    limiter, clock = backend.limiter, backend.clock
    await _fail(limiter, CONFIG.free_failures + 1)
    clock.advance(CONFIG.failure_memory)
    assert (await limiter.check(ACCOUNT)).allowed
    assert all(d.allowed for d in await _fail(limiter, CONFIG.free_failures))


async def test_failure_keys_are_independent(backend: Backend) -> None:
    limiter = backend.limiter
    await _fail(limiter, CONFIG.lock_after, key="acct:alice")
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


# -- Redis only -----------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_keys_have_ttls_and_hide_the_caller_keys(
    redis_client: Redis, prefix: str
) -> None:
    limiter = RedisRateLimiter(redis_client, CONFIG, prefix=prefix)
    await limiter.hit("ip:192.0.2.1", 5, 10.0)
    await _fail(limiter, CONFIG.free_failures + 1, key="acct:alice")
    await _fail(limiter, CONFIG.lock_after, key="acct:mallory")
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
    decisions = await _fail(limiter, CONFIG.free_failures + 1)
    assert decisions[-1].retry_after == 1.0
    check = await limiter.check(ACCOUNT)
    assert not check.allowed and 0 < check.retry_after <= 1.0


@pytest.mark.redis
async def test_two_instances_share_one_limit(redis_client: Redis, prefix: str) -> None:
    """Two limiters on two connections pools, as two server processes would have."""
    other = await _redis_client()
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
    client = await _redis_client()
    await client.aclose()
    decoded = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        limiter = RedisRateLimiter(decoded, CONFIG, prefix=prefix, clock=FakeClock(CLOCK_START))
        assert (await limiter.hit("ip:x", 1, 5.0)).allowed
        assert (await limiter.hit("ip:x", 1, 5.0)).retry_after == pytest.approx(5.0)
        await _fail(limiter, CONFIG.lock_after)
        assert (await limiter.check(ACCOUNT)).locked
    finally:
        await _cleanup(decoded, prefix)
        await decoded.aclose()


@pytest.mark.redis
async def test_from_url_owns_its_client(prefix: str) -> None:
    client = await _redis_client()
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
