"""A DPoP proof is used once across every process of the server (RFC 9449 §11.1), through Redis.

A thief who captured a proof (and the token it goes with) replays it to another
worker or replica within its minute; that process never saw it, so only the
record in Redis refuses it. While Redis is down each process still refuses what
it saw itself, and the token endpoint keeps answering.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from authmesh.dpop import DpopProof, ReplayCache, make_proof
from authmesh.jose import Key
from authmesh.server.dpop_proofs import MAX_AGE, SharedProofLog
from authmesh.server.redis_client import short_timeout_client
from authmesh.testing import FakeClock, TcpProxy
from support.databases import db_target
from support.harness import Api, launch
from support.redis_server import REDIS_URL, require_redis

pytestmark = pytest.mark.redis

REDIS = REDIS_URL


@pytest.fixture(autouse=True)
def _redis_running() -> None:
    require_redis()


def _proof(now: float) -> DpopProof:
    return DpopProof(jkt="thumbprint-of-the-key", jti=str(uuid.uuid4()), iat=now)


async def test_a_proof_one_process_saw_is_refused_by_another() -> None:
    prefix = f"test:dpop:{uuid.uuid4()}:"
    worker_a = SharedProofLog(Redis.from_url(REDIS), prefix=prefix)
    worker_b = SharedProofLog(Redis.from_url(REDIS), prefix=prefix)
    elsewhere = SharedProofLog(Redis.from_url(REDIS), prefix=f"test:dpop:{uuid.uuid4()}:")
    reader = Redis.from_url(REDIS)
    try:
        proof = _proof(time.time() - 10)
        assert await worker_a.first_use(proof, leeway=5)
        assert not await worker_b.first_use(proof, leeway=5)
        assert not await worker_a.first_use(proof, leeway=5)
        assert await worker_b.first_use(_proof(time.time()), leeway=5)  # another jti
        assert await elsewhere.first_use(proof, leeway=5)  # another deployment's namespace
        # Remembered exactly as long as the proof could still be accepted.
        ttl = await reader.pttl(f"{prefix}{proof.jkt}:{proof.jti}")
        assert (MAX_AGE + 5 - 10 - 5) * 1000 < ttl <= (MAX_AGE + 5 - 10) * 1000
    finally:
        for log in (worker_a, worker_b, elsewhere):
            await log.aclose()
        await reader.aclose()


async def test_redis_down_costs_one_timeout_then_each_process_remembers_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    monotonic = FakeClock(100.0)
    with TcpProxy("127.0.0.1", 6379) as proxy:
        log = SharedProofLog(
            short_timeout_client(f"redis://127.0.0.1:{proxy.port}/0", timeout=0.5),
            prefix=f"test:dpop:{uuid.uuid4()}:",
            monotonic=monotonic,
        )
        try:
            proof = _proof(time.time())
            assert await log.first_use(proof, leeway=5)
            proxy.freeze()
            with caplog.at_level(logging.WARNING, logger="authmesh.server.dpop_proofs"):
                started = time.monotonic()
                assert await log.first_use(_proof(time.time()), leeway=5)  # one timeout
                first = time.monotonic() - started
                started = time.monotonic()
                assert await log.first_use(_proof(time.time()), leeway=5)  # Redis left alone
                second = time.monotonic() - started
            # A call that waited on the frozen Redis would take its whole 0.5 s timeout.
            assert log.redis_down and first < 3.0 and second < 0.4
            assert "DPoP proofs are remembered per process" in caplog.text
            proxy.restore()
            monotonic.advance(log.retry_interval)
            assert not await log.first_use(proof, leeway=5)  # shared again: seen before
            assert not log.redis_down
        finally:
            await log.aclose()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with contextlib.ExitStack() as stack:
        target = stack.enter_context(db_target("sqlite", tmp_path))
        started = launch(target, redis_url=REDIS, rate_limit_per_minute=100_000)
        yield started
        started.close()
        started.server.stop()


def test_a_proof_replayed_to_another_worker_is_refused(api: Api) -> None:
    key = Key.generate("ES256")
    proof = make_proof(key, method="POST", url=f"{api.url}/oauth/token")
    form = {"grant_type": "client_credentials"}
    headers = {"Authorization": api.service_basic, "DPoP": proof}

    first = api.token(form, headers=headers)
    # Another worker: the same database and Redis, none of this process's memory.
    api.core.dpop_replay = ReplayCache()
    again = api.token(form, headers=headers)

    assert first.status_code == 200, first.text
    assert first.json()["token_type"] == "DPoP"
    assert again.status_code == 400
    assert again.json() == {
        "error": "invalid_dpop_proof",
        "error_description": "the proof was used before",
    }
