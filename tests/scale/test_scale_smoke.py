"""The scale test in small: 2 replicas behind HAProxy, 3 services, ~8 s of load, one kill.

The same code as ``make scale`` (bench/scale/), at a size that fits the suite:
every promise it checks (no refresh token lost or usable twice, every block
reaching every service, errors only around the kill and all retryable) must
hold here too.
"""

from __future__ import annotations

import os

import pytest
from bench.scale.cluster import REDIS_URL
from bench.scale.haproxy import haproxy_path
from bench.scale.run import Plan, run

from authmesh.testing.databases import postgres_available

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

SMOKE = Plan(
    replicas=2,
    services=3,
    services_per_process=3,
    duration=8.0,
    kill_at=3.0,
    restart_at=5.0,
    chains=6,
    sign_in_workers=1,
    cc_workers=1,
    think=0.05,
    users=20,
    # The final checks wait out the grace before replaying an old token.
    refresh_reuse_grace=1.0,
)


def _require_components() -> None:
    if haproxy_path() is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy; .ci/run installs it)")
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not running")
    if not _redis_available():
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_URL} is required in CI")
        pytest.skip(f"Redis at {REDIS_URL} is not running")


def _redis_available() -> bool:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


@pytest.mark.timeout(120)
def test_replicas_behind_haproxy_survive_a_kill_under_load() -> None:
    _require_components()
    outcome = run(SMOKE)
    a = outcome.analysis

    assert a.ok, a.problems
    assert [what for what, _at, _r in outcome.events] == ["kill", "restart"]
    for grant in ("password", "refresh_token", "client_credentials", "block"):
        assert a.grants[grant] > 0, a.grants
    assert len(a.block_latencies_ms) >= 2  # one a second when the machine is idle
    assert a.checks == {
        "last token rotates": SMOKE.chains,
        "last token not usable twice": SMOKE.chains,
        "old token refused, session ended": SMOKE.chains,
    }
    # Generous: the machine is shared; the figures belong in bench/RESULTS.md.
    assert a.latency(0.5) < 2000, a.block_latencies_ms
