"""Two auth-server processes on one PostgreSQL schema: a revocation written through
one reaches services subscribed to the other within the same second.

The feed's heartbeat is 5 s here, so a sub-second figure can only come from the
other process being woken (LISTEN/NOTIFY, or Redis pub/sub with
``AUTHMESH_REDIS_URL``), not from its stream re-reading the log on a timer.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from authmesh.testing import free_port, wait_for
from authmesh.testing.authserver import AuthServerProcess, seed_demo, settings_for
from support.acceptance import (
    OfflineCore,
    RemoteServer,
    measure_rejection,
    process_env,
    report_latency,
    run_service,
    service_config,
)
from support.databases import db_target
from support.harness import Api

REDIS_URL = os.environ.get("AUTHMESH_TEST_REDIS", "redis://127.0.0.1:6379/0")
HEARTBEAT = 5.0


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


@pytest.mark.postgres
@pytest.mark.parametrize(
    "wake",
    ["postgres", pytest.param("redis", marks=pytest.mark.redis)],
    ids=["listen-notify", "redis-pubsub"],
)
def test_a_block_through_one_replica_reaches_subscribers_of_the_other(
    tmp_path: Path, wake: str, record_property: Any
) -> None:
    extra: dict[str, Any] = {}
    if wake == "redis":
        if not _redis_available():
            if os.environ.get("CI"):
                pytest.fail(f"Redis at {REDIS_URL} is required in CI")
            pytest.skip(f"Redis at {REDIS_URL} is not running")
        extra["redis_url"] = REDIS_URL
    with db_target("postgres", tmp_path) as target, contextlib.ExitStack() as stack:
        port_a, port_b = free_port(), free_port()
        # One public issuer for both replicas, as behind a load balancer.
        issuer = f"http://127.0.0.1:{port_b}"
        offline = OfflineCore(settings_for(target, port=port_b, issuer=issuer))
        stack.callback(offline.close)
        secret = seed_demo(offline)["service_secret"]  # type: ignore[arg-type]
        env = process_env(target, issuer=issuer, feed_heartbeat=HEARTBEAT, **extra)
        replicas = {}
        for name, port in (("a", port_a), ("b", port_b)):
            process = AuthServerProcess(env, port)
            stack.callback(process.stop)
            replicas[name] = process.start()
            health = httpx.get(f"{process.url}/healthz", timeout=5).json()
            assert health["feed_backend"] == wake
        api_a = Api(RemoteServer(replicas["a"].url, offline), secret)  # type: ignore[arg-type]
        stack.callback(api_a.close)
        config = service_config(issuer, secret, max_feed_staleness=3 * HEARTBEAT)
        services = {
            name: stack.enter_context(run_service(name, config)) for name in ("fastapi", "flask")
        }
        name, password = api_a.new_user()
        token = str(api_a.login(name, password)["access_token"])
        for service in services.values():
            assert service.accepts(token)
            wait_for(service.feed_connected)

        response = api_a.admin("POST", f"/admin/users/{name}/block")
        assert response.status_code == 200, response.text
        latencies = measure_rejection(services, token)

        report_latency(f"cross-process ({wake})", latencies)
        record_property("revocation_latency_ms", {k: round(v * 1000) for k, v in latencies.items()})
        assert max(latencies.values()) < 1.0, latencies
