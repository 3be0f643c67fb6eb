"""``/readyz`` asks the database and Redis; ``/healthz`` only says the process is alive."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from authmesh.testing import TcpProxy, wait_for
from support.databases import db_target
from support.harness import Api, launch

#: Generous: the machine is shared; the probe's own bound is about 3 s here.
ANSWER_BOUND = 10.0


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", 6379) as proxy:
        yield proxy


@pytest.fixture
def with_redis(tmp_path: Path, redis_proxy: TcpProxy) -> Iterator[Api]:
    with db_target("sqlite", tmp_path) as target:
        api = launch(
            target, redis_url=f"redis://127.0.0.1:{redis_proxy.port}/0", database_connect_timeout=1
        )
        try:
            yield api
        finally:
            redis_proxy.restore()
            api.close()
            api.server.stop()


def _ready(api: Api) -> tuple[httpx.Response, float]:
    sent = time.monotonic()
    response = api.http.get("/readyz")
    return response, time.monotonic() - sent


def test_ready_without_redis_reports_it_not_configured(api: Api) -> None:
    response, _ = _ready(api)

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "up", "redis": "not_configured"}
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("fault", ["kill", "freeze"])
def test_redis_down_makes_the_server_unready_until_it_is_back(
    with_redis: Api, redis_proxy: TcpProxy, fault: str
) -> None:
    before, _ = _ready(with_redis)
    getattr(redis_proxy, fault)()
    during, took = _ready(with_redis)
    alive = with_redis.http.get("/healthz")
    redis_proxy.restore()

    assert before.json() == {"status": "ready", "database": "up", "redis": "up"}
    assert during.status_code == 503
    assert during.headers["retry-after"] == "5"
    assert during.json() == {"status": "unavailable", "database": "up", "redis": "down"}
    assert took < ANSWER_BOUND
    assert alive.status_code == 200  # liveness does not depend on Redis
    wait_for(lambda: _ready(with_redis)[0].status_code == 200, ANSWER_BOUND)
