"""Who follows the feed: the follower registry, its lag figures, and the per-client
stream limit (a flood of streams from one client is refused quickly with 429 while
sign-ins go on)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from authmesh.server.feed.followers import (
    STREAM_LIMIT_RETRY_AFTER,
    FollowerRegistry,
    StreamLimitReached,
    replica_label,
)
from authmesh.testing import FakeClock, async_wait_for, wait_for
from support.harness import ALICE, Api, basic


def _registry(clock: FakeClock, limit: int = 2) -> FollowerRegistry:
    return FollowerRegistry(max_per_client=limit, clock=clock, server="auth-1:42")


def test_streams_are_counted_per_client_and_limited() -> None:
    clock = FakeClock(1000.0)
    registry = _registry(clock)
    first = registry.open(client_id="orders-svc", cursor=0, remote_addr="10.0.0.5", remote_port=1)
    registry.open(client_id="orders-svc", cursor=0, replica="orders-7f9:12")
    other = registry.open(client_id="catalog-svc", cursor=3)
    with pytest.raises(StreamLimitReached) as refused:
        registry.open(client_id="orders-svc", cursor=0)
    assert refused.value.status == 429
    assert refused.value.headers() == {"Retry-After": str(STREAM_LIMIT_RETRY_AFTER)}
    assert registry.count("orders-svc") == 2 and registry.count() == 3 and registry.refused == 1
    assert first.replica == "10.0.0.5:1" and first.server == "auth-1:42"
    assert [f.replica for f in registry.followers()][1] == "orders-7f9:12"

    registry.close(first)
    registry.close(first)  # idempotent
    registry.open(client_id="orders-svc", cursor=0)  # room again
    registry.close(other)
    assert registry.count("catalog-svc") == 0 and registry.count() == 2


def test_no_limit_when_zero() -> None:
    registry = _registry(FakeClock(0.0), limit=0)
    for _ in range(100):
        registry.open(client_id="orders-svc", cursor=0)
    assert registry.count("orders-svc") == 100


def test_lag_in_events_and_milliseconds() -> None:
    clock = FakeClock(1000.0)
    registry = _registry(clock)
    registry.note_head(10)
    follower = registry.open(client_id="orders-svc", cursor=10, replica="a")
    clock.advance(5)
    view = registry.describe(follower)
    assert view["behind_events"] == 0 and view["behind_ms"] == 0.0 and view["head"] == 10

    registry.note_head(11)  # an event at t=1005 …
    clock.advance(0.25)
    registry.note_head(14)  # … three more at t=1005.25
    clock.advance(0.5)
    view = registry.describe(follower)
    # Behind since cursor 11 became known, 750 ms ago.
    assert view["behind_events"] == 4 and view["behind_ms"] == 750.0

    follower.sent_event(11, clock())
    view = registry.describe(follower)
    assert view["behind_events"] == 3 and view["behind_ms"] == 500.0
    follower.sent_event(14, clock())
    clock.advance(1)
    follower.sent_heartbeat(clock(), 14)
    view = registry.describe(follower)
    assert view["behind_events"] == 0 and view["behind_ms"] == 0.0
    assert view["events_sent"] == 2 and view["last_event_at"] == 1005.75
    assert view["last_seen_at"] == 1006.75 and view["connected_at"] == 1000.0
    assert view["deliveries"] == [(11, 1005.75), (14, 1005.75)]
    assert registry.snapshot() == [view]

    registry.note_head(20)  # events 15..20 expired before they could be sent: …
    follower.sent_heartbeat(clock(), 20)  # … the heartbeat says it is caught up
    assert registry.describe(follower)["behind_events"] == 0


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (None, None),
        ("", None),
        ("svc-1:99", "svc-1:99"),
        ('a b"\x00\u00e9c', 'ab"c'),
        ("x" * 300, "x" * 100),
    ],
)
def test_replica_labels_are_printable_and_short(value: str | None, label: str | None) -> None:
    assert replica_label(value) == label


# -- against the server ------------------------------------------------------------------


def _stream_headers(api: Api, replica: str) -> dict[str, str]:
    return {
        "Authorization": api.service_basic,
        "Accept": "text/event-stream",
        "Authmesh-Replica": replica,
    }


def test_an_open_stream_is_listed_with_its_lag_until_it_closes(api: Api) -> None:
    registry = api.server.core.hub.followers
    name, _ = api.new_user()
    with httpx.Client(base_url=api.url, timeout=5) as client:
        with client.stream(
            "GET", "/revocations/stream", headers=_stream_headers(api, "orders-1:7")
        ) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            wait_for(lambda: registry.count("orders-svc") == 1, timeout=5)
            (follower,) = registry.followers()
            assert follower.client_id == "orders-svc" and follower.replica == "orders-1:7"
            assert follower.remote_addr == "127.0.0.1"
            assert follower.user_agent is not None and "python-httpx" in follower.user_agent

            assert api.admin("POST", f"/admin/users/{name}/block").status_code == 200
            for line in lines:  # read up to the event: then it was sent
                if line.startswith("id: "):
                    cursor = int(line[4:])
                    break
            wait_for(lambda: follower.cursor == cursor, timeout=5)
            view = registry.describe(follower)
            assert view["events_sent"] >= 1 and view["deliveries"][-1][0] == cursor
            assert view["behind_events"] == 0 and view["head"] == cursor
    wait_for(lambda: registry.count() == 0, timeout=5)


async def _open(
    client: httpx.AsyncClient, headers: dict[str, str], hold: asyncio.Event
) -> tuple[int, float, str | None]:
    started = time.monotonic()
    async with client.stream("GET", "/revocations/stream", headers=headers) as response:
        took = time.monotonic() - started
        status, retry = response.status_code, response.headers.get("retry-after")
        if status == 200:
            await hold.wait()  # keep it open until the flood is over
        else:
            await response.aread()
    return status, took, retry


async def _sign_in(client: httpx.AsyncClient) -> tuple[int, float]:
    started = time.monotonic()
    response = await client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": ALICE[0],
            "password": ALICE[1],
            "client_id": "web",
        },
    )
    return response.status_code, time.monotonic() - started


async def test_a_flood_of_streams_from_one_client_gets_429_while_sign_ins_go_on(
    start_server: Callable[..., Api],
) -> None:
    limit, flood = 5, 60
    api = start_server(feed_max_streams_per_client=limit)
    registry = api.server.core.hub.followers
    hold = asyncio.Event()
    limits = httpx.Limits(max_connections=flood + 20)
    async with httpx.AsyncClient(base_url=api.url, timeout=10, limits=limits) as client:
        streams = [
            asyncio.create_task(_open(client, _stream_headers(api, f"r{i}"), hold))
            for i in range(flood)
        ]
        sign_ins = [asyncio.create_task(_sign_in(client)) for _ in range(10)]
        signed: list[tuple[int, float]] = await asyncio.gather(*sign_ins)
        await async_wait_for(lambda: sum(t.done() for t in streams) == flood - limit, 10)
        assert registry.count("orders-svc") == limit
        pending = [t for t in streams if not t.done()]
        hold.set()
        opened = await asyncio.gather(*pending)
    results: list[tuple[int, float, Any]] = [t.result() for t in streams]
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] * limit + [429] * (flood - limit)
    assert all(retry == str(STREAM_LIMIT_RETRY_AFTER) for s, _, retry in results if s == 429)
    slowest_refusal = max(took for s, took, _ in results if s == 429)
    assert slowest_refusal < 5.0, slowest_refusal
    assert [status for status, _ in signed] == [200] * len(signed)
    slowest_sign_in = max(took for _, took in signed)
    assert slowest_sign_in < 5.0, slowest_sign_in
    assert len(opened) == limit and registry.refused == flood - limit
    print(
        f"stream flood: {flood} streams, limit {limit}: slowest 429 in "
        f"{slowest_refusal * 1000:.0f} ms; 10 sign-ins meanwhile, slowest "
        f"{slowest_sign_in * 1000:.0f} ms"
    )
    await async_wait_for(lambda: registry.count() == 0, 10)


def test_a_client_at_its_limit_is_refused_before_its_secret_is_checked(
    start_server: Callable[..., Api],
) -> None:
    # The refusal of a flood costs no database read; it tells a caller without
    # the secret only that this client is at its limit.
    api = start_server(feed_max_streams_per_client=1)
    wrong = {"Authorization": basic("orders-svc", "not-the-secret")}
    with httpx.Client(base_url=api.url, timeout=5) as client:
        assert client.get("/revocations/stream", headers=wrong).status_code == 401
        with client.stream(
            "GET", "/revocations/stream", headers=_stream_headers(api, "only")
        ) as response:
            assert response.status_code == 200
            response = client.get("/revocations/stream", headers=wrong)
            assert response.status_code == 429 and response.json()["error"] == "slow_down"
            other = {"Authorization": basic("web", "")}
            assert client.get("/revocations/stream", headers=other).status_code == 401
