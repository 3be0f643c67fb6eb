"""The revocation feed (docs/architecture.md): a page by cursor, and the SSE stream."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from authmesh.testing import FakeClock
from support.harness import Api, basic, claims_of


def _revoke_service_tokens(api: Api, count: int) -> list[str]:
    """Write ``count`` jti events through the API; returns the jtis in order."""
    jtis = []
    for _ in range(count):
        token = api.service_token()["access_token"]
        response = api.http.post(
            "/oauth/revoke", data={"token": token}, headers={"Authorization": api.service_basic}
        )
        assert response.status_code == 200
        jtis.append(claims_of(token)["jti"])
    return jtis


@pytest.fixture
def api(shared: Api) -> Api:
    """Tests here read the feed after a cursor of their own and block their own users."""
    return shared


# --- GET /revocations ------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "Basic " + "%%%",
        basic("orders-svc", "wrong"),
        basic("nobody", "secret"),
        basic("web", ""),
        "Bearer some.jwt.token",
    ],
    ids=["none", "malformed", "wrong-secret", "unknown", "public-client", "bearer"],
)
@pytest.mark.parametrize("path", ["/revocations", "/revocations/stream"])
def test_feed_needs_a_confidential_client(api: Api, path: str, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}

    response = api.http.get(path, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"] == 'Basic realm="authmesh"'


def test_feed_refuses_a_user_bearer_token(api: Api) -> None:
    response = api.http.get("/revocations", headers=api.bearer(api.admin_token()))

    assert response.status_code == 401


def test_feed_is_empty_on_a_fresh_server(fresh: Api) -> None:
    page = fresh.revocations()

    assert page["events"] == []
    assert page["next_cursor"] == 0
    assert page["has_more"] is False
    assert page["latest_cursor"] == 0
    assert abs(page["server_time"] - time.time()) < 5


def test_feed_pages_by_cursor(api: Api) -> None:
    before = api.latest_cursor()
    jtis = _revoke_service_tokens(api, 5)

    first = api.revocations(after=before, limit=2)
    assert [e["value"] for e in first["events"]] == jtis[:2]
    assert first["has_more"] is True
    assert first["next_cursor"] == first["events"][-1]["cursor"]
    assert first["latest_cursor"] == api.latest_cursor()

    second = api.revocations(after=first["next_cursor"], limit=2)
    assert [e["value"] for e in second["events"]] == jtis[2:4]
    assert second["has_more"] is True

    third = api.revocations(after=second["next_cursor"], limit=2)
    assert [e["value"] for e in third["events"]] == jtis[4:]
    assert third["has_more"] is False
    assert third["next_cursor"] == third["latest_cursor"]

    done = api.revocations(after=third["next_cursor"], limit=2)
    assert done["events"] == []
    assert done["has_more"] is False
    assert done["next_cursor"] == third["next_cursor"]

    cursors = [e["cursor"] for p in (first, second, third) for e in p["events"]]
    assert cursors == sorted(cursors)
    assert len(set(cursors)) == 5
    for event in first["events"]:
        assert set(event) == {"cursor", "kind", "value", "not_before", "expires_at"}
        assert event["kind"] == "jti"
        # The event matters as long as the longest token could: ttl + leeway.
        assert event["expires_at"] - event["not_before"] == pytest.approx(630, abs=1.5)


def test_feed_page_of_everything_after_a_cursor(api: Api) -> None:
    before = api.latest_cursor()
    jtis = _revoke_service_tokens(api, 3)

    page = api.revocations(after=before)

    assert [e["value"] for e in page["events"]] == jtis
    assert page["has_more"] is False


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 1001}, {"after": -1}, {"after": "x"}, {"limit": "many"}],
    ids=["limit-0", "limit-1001", "negative-after", "after-not-int", "limit-not-int"],
)
def test_feed_rejects_bad_paging_parameters(api: Api, params: dict[str, Any]) -> None:
    response = api.http.get(
        "/revocations", params=params, headers={"Authorization": api.service_basic}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


# --- GET /revocations/stream -----------------------------------------------


class SSE:
    """Reads ``text/event-stream`` events off a streaming httpx response."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.iter_lines()

    def __iter__(self) -> Iterator[dict[str, str]]:
        event: dict[str, str] = {}
        for line in self._lines:
            if not line:
                if event:
                    yield event
                event = {}
                continue
            name, _, value = line.partition(":")
            event[name] = value[1:] if value.startswith(" ") else value

    def next_revocations(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` revocation events (skipping heartbeats)."""
        found: list[dict[str, Any]] = []
        for event in self:
            if event.get("event") == "revocation":
                data = json.loads(event["data"])
                assert event["id"] == str(data["cursor"])
                found.append(data)
                if len(found) == count:
                    break
        return found

    def until_heartbeat(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Revocation events up to the next heartbeat, and the heartbeat."""
        found: list[dict[str, Any]] = []
        for event in self:
            if event.get("event") == "revocation":
                found.append(json.loads(event["data"]))
            elif event.get("event") == "heartbeat":
                return found, json.loads(event["data"])
        raise AssertionError("the stream ended")


@contextmanager
def _stream(api: Api, **headers: str) -> Iterator[SSE]:
    params = {}
    if "after" in headers:
        params["after"] = headers.pop("after")
    with api.http.stream(
        "GET",
        "/revocations/stream",
        params=params,
        headers={"Authorization": api.service_basic, **headers},
        timeout=httpx.Timeout(10, read=8),
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        yield SSE(response)


def test_stream_resumes_after_last_event_id(api: Api) -> None:
    before = api.latest_cursor()
    jtis = _revoke_service_tokens(api, 4)
    cursors = [e["cursor"] for e in api.revocations(before)["events"]]

    with _stream(api, **{"Last-Event-ID": str(cursors[1])}) as sse:
        events, heartbeat = sse.until_heartbeat()

    assert [e["value"] for e in events] == jtis[2:]
    assert [e["cursor"] for e in events] == cursors[2:]
    assert heartbeat["latest_cursor"] == cursors[-1]


def test_stream_from_the_start_and_by_query(fresh: Api) -> None:
    api = fresh
    jtis = _revoke_service_tokens(api, 3)
    cursors = [e["cursor"] for e in api.revocations()["events"]]

    with _stream(api) as sse:
        everything, _ = sse.until_heartbeat()
    with _stream(api, after=str(cursors[0])) as sse:
        by_query, _ = sse.until_heartbeat()
    # The header wins over the query.
    with _stream(api, after=str(cursors[0]), **{"Last-Event-ID": str(cursors[1])}) as sse:
        by_header, _ = sse.until_heartbeat()

    assert [e["value"] for e in everything] == jtis
    assert [e["value"] for e in by_query] == jtis[1:]
    assert [e["value"] for e in by_header] == jtis[2:]


@pytest.mark.parametrize("value", ["abc", "-1", "1.5"])
def test_stream_rejects_a_bad_last_event_id(api: Api, value: str) -> None:
    response = api.http.get(
        "/revocations/stream",
        headers={"Authorization": api.service_basic, "Last-Event-ID": value},
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def _block_later(api: Api, username: str, delay: float) -> tuple[threading.Thread, list[float]]:
    """Block ``username`` from another thread after ``delay``; records when it was sent."""
    sent: list[float] = []
    token = api.admin_token()

    def run() -> None:
        time.sleep(delay)
        sent.append(time.monotonic())
        with httpx.Client(base_url=api.url, timeout=10) as client:
            response = client.post(f"/admin/users/{username}/block", headers=api.bearer(token))
        assert response.status_code == 200
        sent.append(time.monotonic())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, sent


def test_stream_delivers_a_block_within_a_second(api: Api) -> None:
    user = api.new_user()
    user_id = api.user_id(user[0])
    login = api.login(*user)
    sid = claims_of(login["access_token"])["sid"]
    latest = api.latest_cursor()

    with _stream(api, **{"Last-Event-ID": str(latest)}) as sse:
        backlog, heartbeat = sse.until_heartbeat()
        assert backlog == []
        assert heartbeat["latest_cursor"] == latest
        thread, sent = _block_later(api, user[0], 0.3)
        events = sse.next_revocations(2)
        received = time.monotonic()
    thread.join(5)

    assert sorted((e["kind"], e["value"]) for e in events) == [("sid", sid), ("sub", user_id)]
    assert all(e["cursor"] > latest for e in events)
    assert received - sent[0] < 1.0, f"took {received - sent[0]:.2f}s"


def test_stream_on_one_replica_sees_a_block_on_another(
    start_server: Callable[..., Api],
) -> None:
    first = start_server(feed_poll_interval=0.2)
    second = start_server(seed=False, feed_poll_interval=0.2)
    second.service_secret = first.service_secret
    latest = first.latest_cursor()

    with _stream(second, **{"Last-Event-ID": str(latest)}) as sse:
        sse.until_heartbeat()
        thread, sent = _block_later(first, "alice", 0.3)
        events = sse.next_revocations(1)
        received = time.monotonic()
    thread.join(5)

    assert events[0]["kind"] == "sub"
    assert received - sent[0] < 1.0, f"took {received - sent[0]:.2f}s"


def test_expired_events_leave_the_feed(start_server: Callable[..., Api]) -> None:
    clock = FakeClock()
    api = start_server(clock=clock, access_token_ttl=60, leeway=5)
    first = _revoke_service_tokens(api, 1)
    clock.now += 30
    second = _revoke_service_tokens(api, 1)

    assert [e["value"] for e in api.revocations()["events"]] == first + second
    clock.now += 36  # the first event is 66 s old: no token it covers can still be valid
    page = api.revocations()

    assert [e["value"] for e in page["events"]] == second
    assert page["latest_cursor"] == page["events"][-1]["cursor"]
