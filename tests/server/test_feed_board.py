"""With Redis, the console's live view lists the feed streams of every server process.

Each process posts its own open streams to Redis once a second; the view reads
every post. Two servers share one database and one Redis here, as two replicas
do; a service follows the feed through the second, and the first one's view
lists it, then drops it once the stream closes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from authmesh.server.console.live import live_view
from authmesh.testing import wait_for
from support.harness import Api
from support.redis_server import REDIS_URL, require_redis

pytestmark = pytest.mark.redis

REDIS = REDIS_URL


@pytest.fixture(autouse=True)
def _redis_running() -> None:
    require_redis()


def test_the_live_view_lists_the_streams_other_processes_serve(
    start_server: Callable[..., Api],
) -> None:
    first = start_server(redis_url=REDIS)
    second = start_server(seed=False, redis_url=REDIS)
    # Both servers run in this test's process, so they would post under one name.
    second.core.hub.followers.server = f"replica-b-{uuid.uuid4().hex[:8]}"
    replica = f"orders-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": first.service_basic, "Authmesh-Replica": replica}

    def listed() -> dict[str, Any] | None:
        view = first.server.call(live_view(first.core))
        return next((f for f in view["followers"] if f["replica"] == replica), None)

    with httpx.Client(base_url=second.url, timeout=5) as client:
        with client.stream("GET", "/revocations/stream", headers=headers) as response:
            assert response.status_code == 200
            wait_for(lambda: listed() is not None, timeout=10)
            follower = listed()
            assert follower is not None and follower["client_id"] == "orders-svc"
            assert follower["server"] == second.core.hub.followers.server
            assert not first.core.hub.followers.followers()  # not one of the first's own
    wait_for(lambda: listed() is None, timeout=10)


def test_posts_this_code_did_not_write_are_passed_over(start_server: Callable[..., Api]) -> None:
    api = start_server(redis_url=REDIS)
    board = api.core.hub.board
    assert board is not None
    strangers = [f"stranger-{uuid.uuid4().hex[:8]}" for _ in range(3)]

    prefix = board.key.rsplit("post:", 1)[0]  # the namespace of this database's board
    bodies = (b"not json", b'{"a": 1}', b'[{"x": 1}, 7]')

    async def plant() -> None:
        redis = Redis.from_url(REDIS)
        try:
            for name, body in zip(strangers, bodies, strict=True):
                await redis.set(f"{prefix}post:{name}", body, ex=30)
                await redis.sadd(f"{prefix}servers", name)
        finally:
            await redis.aclose()

    api.server.call(plant())
    view = api.server.call(live_view(api.core))
    assert view["followers"] == []
