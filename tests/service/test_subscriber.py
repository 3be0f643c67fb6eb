"""The revocation feed subscriber: page/SSE processing, and following a real (fake) issuer."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from authmesh.revocation import RevocationEvent
from authmesh.service import FeedError, FeedUnauthorized, ServiceAuth, ServiceConfig
from authmesh.service._feed import FeedProcessor, NoStream
from authmesh.service._http import Fetched
from authmesh.service._revocations import RevocationState
from authmesh.service._sse import ServerSentEvent
from authmesh.testing import FakeClock, FakeIssuer, wait_for
from support.sdk import live_config, mock_config


def ev(
    cursor: int, kind: str = "jti", value: str | None = None, ttl: float = 600
) -> dict[str, Any]:
    # Live for ``ttl`` from now, however long the suite ran before this test.
    now = time.time()
    return {
        "cursor": cursor,
        "kind": kind,
        "value": value or f"v{cursor}",
        "not_before": now,
        "expires_at": now + ttl,
    }


def page(events: list[dict[str, Any]], *, has_more: bool = False, status: int = 200) -> Fetched:
    doc = {"events": events, "has_more": has_more, "latest_cursor": 99, "next_cursor": 0}
    return Fetched(status, httpx.Headers(), json.dumps(doc).encode())


@pytest.fixture
def proc() -> FeedProcessor:
    state = RevocationState(monotonic=FakeClock(5.0))
    return FeedProcessor(mock_config(client_secret="p@ss:w%rd é"), state, rng=lambda: 1.0)


# -- FeedProcessor (no I/O) ------------------------------------------------------------


def test_needs_client_credentials() -> None:
    config = ServiceConfig(issuer="https://a.b", audience="o", fail_open=True)
    with pytest.raises(FeedError, match="client_id"):
        FeedProcessor(config, RevocationState())


def test_requests_carry_the_cursor_and_basic_credentials(proc: FeedProcessor) -> None:
    proc.state.apply(RevocationEvent.from_json(ev(7)))
    req = proc.page_request()
    assert req["params"] == {"after": 7, "limit": 1000}
    stream = proc.stream_request(5.0)
    assert stream["headers"]["Last-Event-ID"] == "7"
    assert stream["headers"]["Accept"] == "text/event-stream"
    assert req["headers"]["Authorization"] == stream["headers"]["Authorization"]
    # Names this process, so the issuer's follower list tells replicas apart.
    assert stream["headers"]["Authmesh-Replica"] == req["headers"]["Authmesh-Replica"]
    assert stream["headers"]["Authmesh-Replica"].endswith(f":{os.getpid()}")
    # RFC 6749 §2.3.1: form-urlencoded before Basic, so ':' and '%' survive.
    decoded = base64.b64decode(req["headers"]["Authorization"][6:]).decode()
    assert decoded == "orders:p%40ss%3Aw%25rd+%C3%A9"


def test_apply_page(proc: FeedProcessor) -> None:
    assert proc.apply_page(page([ev(1), ev(2, "sid", "s")], has_more=True))
    assert proc.state.cursor == 2 and proc.state.latest_cursor == 99
    assert proc.state.counts() == {"sub": 0, "sid": 1, "jti": 1}
    assert proc.state.connected_once
    assert not proc.apply_page(page([ev(3)]))
    assert not proc.apply_page(page([], has_more=True))  # an empty page ends a catch-up


@pytest.mark.parametrize(
    ("fetched", "error"),
    [
        (page([], status=401), FeedUnauthorized),
        (page([], status=500), FeedError),
        (Fetched(200, httpx.Headers(), b"<html>"), FeedError),
        (Fetched(200, httpx.Headers(), b'{"events": 5}'), FeedError),
        (page([ev(1), {"cursor": 2, "kind": "user", "value": "x"}, ev(3)]), FeedError),
    ],
    ids=["401", "500", "not-json", "no-list", "bad-event"],
)
def test_bad_pages(proc: FeedProcessor, fetched: Fetched, error: type[Exception]) -> None:
    with pytest.raises(error):
        proc.apply_page(fetched)
    # Nothing past a malformed event is applied: the next catch-up retries it.
    assert proc.state.cursor <= 1


def test_handle_sse_events(proc: FeedProcessor) -> None:
    mono = proc.state._monotonic
    mono.advance(3)  # type: ignore[attr-defined]
    proc.handle(ServerSentEvent("revocation", json.dumps(ev(4, "sub", "alice")), "4"))
    assert proc.state.cursor == 4 and proc.state.seconds_since_heard() == 0
    mono.advance(3)  # type: ignore[attr-defined]
    proc.handle(ServerSentEvent("heartbeat", '{"latest_cursor": 12, "server_time": 1}', "4"))
    assert proc.state.latest_cursor == 12 and proc.state.seconds_since_heard() == 0
    assert proc.synced.is_set()
    mono.advance(3)  # type: ignore[attr-defined]
    proc.handle(ServerSentEvent("something-new", "x", None))
    assert proc.state.seconds_since_heard() == 0
    with pytest.raises(FeedError):
        proc.handle(ServerSentEvent("revocation", "{not json", "5"))
    assert proc.state.cursor == 4


def test_backoff_retries_at_once_then_doubles_with_jitter_up_to_the_cap() -> None:
    config = mock_config(feed_backoff_initial=0.25, feed_backoff_max=5)
    high = FeedProcessor(config, RevocationState(), rng=lambda: 1.0)
    low = FeedProcessor(config, RevocationState(), rng=lambda: 0.0)
    # The first retry anywhere in [0, initial]: a restarted server is followed at once.
    assert [high.backoff(n) for n in range(7)] == [0.25, 0.5, 1, 2, 4, 5, 5]
    assert [low.backoff(n) for n in range(3)] == [0, 0.25, 0.5]
    assert high.backoff(10_000) == 5


def test_default_schedule_stays_under_half_a_second_while_the_issuer_is_down() -> None:
    config = mock_config(feed_backoff_initial=0.25, feed_backoff_max=0.5)
    high = FeedProcessor(config, RevocationState(), rng=lambda: 1.0)
    refused = httpx.ConnectError("connection refused")
    assert high.retry_delay(refused, 0) == 0.25
    assert max(high.retry_delay(refused, n) for n in range(50)) == 0.5
    assert high.retry_delay(FeedError("the stream ended"), 3) == 0.5


def test_an_error_answer_is_retried_after_retry_after_or_more_slowly(proc: FeedProcessor) -> None:
    config = mock_config(feed_backoff_initial=0.25, feed_backoff_max=0.5)
    high = FeedProcessor(config, RevocationState(), rng=lambda: 1.0)
    with pytest.raises(FeedError) as limited:
        proc.check_stream(httpx.Response(429, headers={"retry-after": "7"}))
    assert limited.value.status == 429 and limited.value.retry_after == 7
    assert high.retry_delay(limited.value, 0) == 7 + 0.25
    with pytest.raises(FeedError) as absurd:
        proc.check_stream(httpx.Response(503, headers={"retry-after": "86400"}))
    assert absurd.value.retry_after == 60
    with pytest.raises(FeedError) as dated:
        proc.apply_page(Fetched(503, httpx.Headers({"retry-after": "Wed, 21 Oct 2015"}), b""))
    assert dated.value.status == 503 and dated.value.retry_after is None
    assert [high.retry_delay(dated.value, n) for n in range(7)] == [0.5, 1, 2, 4, 8, 10, 10]
    with pytest.raises(FeedUnauthorized) as refused:
        proc.check_stream(httpx.Response(401))
    assert high.retry_delay(refused.value, 10) == 10


def test_a_long_outage_is_logged_once_then_summarised(
    proc: FeedProcessor, caplog: pytest.LogCaptureFixture
) -> None:
    proc.connected = True
    with caplog.at_level("DEBUG", logger="authmesh.service._feed"):
        for _ in range(20):
            proc.failed(httpx.ConnectError("connection refused"))
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "ConnectError" in warnings[0].getMessage()
    assert proc.stats.feed_failures == 20 and not proc.connected
    caplog.clear()
    proc.failed(FeedError("revocation feed: HTTP 503", status=503))  # a new kind of failure
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "19 more failures" in caplog.records[0].getMessage()


@pytest.mark.parametrize(
    ("status", "ctype", "error"),
    [
        (404, "text/plain", NoStream),
        (401, "", FeedUnauthorized),
        (200, "application/json", FeedError),
        (503, "", FeedError),
    ],
    ids=["no-stream", "unauthorized", "wrong-type", "unavailable"],
)
def test_check_stream(proc: FeedProcessor, status: int, ctype: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        proc.check_stream(httpx.Response(status, headers={"content-type": ctype}))
    assert not proc.connected
    proc.check_stream(
        httpx.Response(200, headers={"content-type": "text/event-stream; charset=utf-8"})
    )
    assert proc.connected and proc.mode == "stream"


# -- against the fake issuer -----------------------------------------------------------


@pytest.fixture
async def running(issuer: FakeIssuer, client_secret: str) -> AsyncIterator[ServiceAuth]:
    issuer.state.revoke("jti", "before-start")
    auth = ServiceAuth(live_config(issuer, client_secret))
    await auth.astart(wait=5)
    yield auth
    await auth.astop()


async def until(predicate: Any, timeout: float = 5.0) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def test_async_subscriber_catches_up_then_streams(
    running: ServiceAuth, issuer: FakeIssuer
) -> None:
    state, feed = running.revocations, running.feed
    assert state is not None and feed is not None
    assert state.cursor == 1 and state.covering("u", None, "before-start", 0) == "jti"
    await until(lambda: feed.connected)
    assert feed.mode == "stream" and issuer.state.stream_cursors == [1]
    issuer.state.revoke("sid", "s-live")
    took = await until(lambda: state.covering("u", "s-live", "j", 0) == "sid")
    assert took < 1.0
    health = running.health()
    assert health["status"] == "ok" and health["feed"]["cursor"] == 2
    assert health["feed"]["stale"] is False


async def test_async_subscriber_resumes_after_a_restart(
    running: ServiceAuth, issuer: FakeIssuer
) -> None:
    state, feed = running.revocations, running.feed
    assert state is not None and feed is not None
    await until(lambda: feed.connected)
    issuer.stop()
    await until(lambda: not feed.connected)
    for i in range(3):
        issuer.state.revoke("jti", f"while-down-{i}")
    issuer.start()
    await until(lambda: state.cursor == 4)
    assert all(state.covering("u", None, f"while-down-{i}", 0) for i in range(3))
    await until(lambda: feed.connected)
    # The stream resumed after the last cursor applied (the catch-up page brought it to 4).
    assert issuer.state.stream_cursors[-1] == 4
    issuer.state.revoke("jti", "after")
    await until(lambda: state.cursor == 5)


async def test_wrong_credentials_are_reported_and_fail_closed(issuer: FakeIssuer) -> None:
    issuer.state.register_client("orders")
    auth = ServiceAuth(live_config(issuer, "wrong-secret"))
    await auth.astart(wait=0.2)
    try:
        feed = auth.feed
        assert feed is not None
        await until(lambda: feed.last_error is not None and "FeedUnauthorized" in feed.last_error)
        await until(auth.verifier.is_stale, timeout=3)
        assert auth.health()["status"] == "failing"
    finally:
        await auth.astop()


async def test_polls_pages_when_the_issuer_has_no_stream(
    issuer: FakeIssuer, client_secret: str
) -> None:
    issuer.state.stream_enabled = False
    auth = ServiceAuth(live_config(issuer, client_secret))
    await auth.astart(wait=5)
    try:
        feed, state = auth.feed, auth.revocations
        assert feed is not None and state is not None
        await until(lambda: feed.mode == "poll")
        issuer.state.revoke("jti", "polled")
        await until(lambda: state.cursor == 1)
        await asyncio.sleep(1.2)  # longer than the staleness bound: polls keep it fresh
        assert not auth.verifier.is_stale()
    finally:
        await auth.astop()


async def test_catch_up_over_several_pages(issuer: FakeIssuer, client_secret: str) -> None:
    for i in range(2300):
        issuer.state.revoke("jti", f"j{i}")
    auth = ServiceAuth(live_config(issuer, client_secret))
    await auth.astart(wait=5)
    try:
        assert auth.revocations is not None and auth.revocations.cursor == 2300
        assert issuer.state.counters.pages >= 3
    finally:
        await auth.astop()


@pytest.fixture
def threaded(issuer: FakeIssuer, client_secret: str) -> Iterator[ServiceAuth]:
    auth = ServiceAuth(live_config(issuer, client_secret))
    auth.start(wait=5)
    yield auth
    auth.stop()


def test_threaded_subscriber_follows_and_resumes(threaded: ServiceAuth, issuer: FakeIssuer) -> None:
    state, feed = threaded.revocations, threaded.feed
    assert state is not None and feed is not None
    wait_for(lambda: feed.connected)
    issuer.state.revoke("sub", "alice")
    assert wait_for(lambda: state.cursor == 1) < 1.0
    issuer.stop()
    wait_for(lambda: not feed.connected)
    issuer.state.revoke("sid", "while-down")
    issuer.start()
    wait_for(lambda: state.covering("u", "while-down", "j", 0) == "sid")
    wait_for(lambda: feed.connected)
    assert issuer.state.stream_cursors[-1] == 2


def test_threaded_subscriber_stops_promptly(threaded: ServiceAuth) -> None:
    feed = threaded.feed
    assert feed is not None
    wait_for(lambda: feed.connected)
    started = time.monotonic()
    threaded.stop()
    assert time.monotonic() - started < 2
    assert not feed.connected
