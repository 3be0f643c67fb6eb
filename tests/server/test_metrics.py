"""The server's Prometheus metrics: grants, latency, the database pool and feed followers."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncConnection

from authmesh.server.metrics import FeedFollowers
from authmesh.testing import wait_for
from support.harness import Api, basic


def _samples(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = api.http.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _value(api: Api, name: str, **labels: str) -> float:
    return _samples(api)[(name, tuple(sorted(labels.items())))]


def test_followers_lag_is_the_furthest_behind() -> None:
    followers = FeedFollowers()
    assert followers.max_lag(10) == 0
    slow = followers.open(2)
    fast = followers.open(9)
    assert len(followers) == 2
    assert followers.max_lag(10) == 8
    followers.advance(slow, 10)
    followers.advance(slow, 4)  # positions never move back
    assert followers.max_lag(10) == 1
    followers.close(fast)
    followers.close(fast)
    assert (len(followers), followers.max_lag(12)) == (1, 2)


def test_grants_are_counted_by_type_and_outcome_with_latency(api: Api) -> None:
    api.login()
    api.password_grant(password="wrong-password-1")
    samples = _samples(api)

    def sample(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    ok = {"grant_type": "password", "outcome": "success"}
    assert sample("authmesh_token_requests_total", **ok) >= 1
    failed = {"grant_type": "password", "outcome": "invalid_grant"}
    assert sample("authmesh_token_requests_total", **failed) >= 1
    assert sample("authmesh_token_request_seconds_count", grant_type="password") >= 1
    assert sample("authmesh_token_request_seconds_sum", grant_type="password") > 0
    assert sample("authmesh_token_request_seconds_bucket", grant_type="password", le="+Inf") >= 1


def test_database_pool_is_read_at_scrape_time(api: Api) -> None:
    size = _value(api, "authmesh_db_pool_size")
    assert size == (5 if api.core.db.is_sqlite else 10)
    before = _value(api, "authmesh_db_pool_checked_out")
    assert _value(api, "authmesh_db_pool_overflow") == 0

    held: AsyncConnection = api.core.db.engine.connect()
    api.server.call(held.start())
    try:
        assert _value(api, "authmesh_db_pool_checked_out") == before + 1
    finally:
        api.server.call(held.close())
    assert _value(api, "authmesh_db_pool_checked_out") == before


def test_feed_followers_are_counted_with_their_lag(start_server: Callable[..., Api]) -> None:
    api = start_server(feed_heartbeat=0.2)
    assert _value(api, "authmesh_feed_streams") == 0
    auth = {"Authorization": basic("orders-svc", api.service_secret)}
    with (
        httpx.Client(base_url=api.url, timeout=10) as follower,
        follower.stream("GET", "/revocations/stream", headers=auth) as stream,
    ):
        assert stream.status_code == 200
        lines = stream.iter_lines()
        while "heartbeat" not in next(lines):
            pass
        assert _value(api, "authmesh_feed_streams") == 1
        # Caught up: the heartbeat told it the newest cursor.
        assert _value(api, "authmesh_feed_follower_lag_max") == 0
    wait_for(lambda: _value(api, "authmesh_feed_streams") == 0, timeout=10)
    assert _value(api, "authmesh_feed_follower_lag_max") == 0
