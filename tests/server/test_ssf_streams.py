"""Shared Signals stream management: who may call it, whose streams they see, what it changes."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from authmesh.server import clients
from support.harness import Api

ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"


@pytest.fixture
def api(shared: Api) -> Api:
    """One server per backend for the module; each test uses receivers of its own."""
    return shared


def receiver_token(api: Api, scopes: tuple[str, ...] = ("ssf:stream",)) -> dict[str, str]:
    """The bearer header of a new client's client-credentials token."""
    client_id = f"rx-{uuid.uuid4().hex[:10]}"
    new = api.server.call(
        clients.register_client(api.core, client_id=client_id, scopes=list(scopes))
    )
    assert new.secret is not None
    answer = api.http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, new.secret)
    )
    assert answer.status_code == 200, answer.text
    return api.bearer(answer.json()["access_token"])


def create(api: Api, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    answer = api.http.post("/ssf/streams", json=body, headers=auth)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def poll(api: Api, auth: dict[str, str], stream: dict[str, Any], **body: Any) -> httpx.Response:
    url = stream["delivery"]["endpoint_url"]
    return api.http.post(url, json={"returnImmediately": True, **body}, headers=auth)


def test_stream_endpoints_refuse_callers_without_a_client_token_holding_the_scope(
    api: Api,
) -> None:
    mine = receiver_token(api)
    stream = create(api, mine)
    calls = [
        ("POST", "/ssf/streams", {"json": {}}),
        ("GET", "/ssf/streams", {}),
        ("GET", f"/ssf/status?stream_id={stream['stream_id']}", {}),
        ("POST", "/ssf/verify", {"json": {"stream_id": stream["stream_id"]}}),
        ("POST", stream["delivery"]["endpoint_url"], {"json": {}}),
    ]
    user = api.bearer(api.login()["access_token"])
    unscoped = receiver_token(api, scopes=())
    for method, url, extra in calls:
        anonymous = api.http.request(method, url, **extra)
        assert anonymous.status_code == 401, (url, anonymous.text)
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        for who in (user, unscoped):
            refused = api.http.request(method, url, headers=who, **extra)
            assert refused.status_code == 403, (url, refused.text)
            assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]


def test_another_receivers_stream_reads_as_absent(api: Api) -> None:
    owner, other = receiver_token(api), receiver_token(api)
    stream = create(api, owner)
    sid = stream["stream_id"]
    attempts = [
        api.http.get("/ssf/streams", params={"stream_id": sid}, headers=other),
        api.http.patch("/ssf/streams", json={"stream_id": sid, "description": "x"}, headers=other),
        api.http.delete("/ssf/streams", params={"stream_id": sid}, headers=other),
        api.http.get("/ssf/status", params={"stream_id": sid}, headers=other),
        api.http.post("/ssf/status", json={"stream_id": sid, "status": "paused"}, headers=other),
        api.http.post("/ssf/verify", json={"stream_id": sid}, headers=other),
        poll(api, other, stream),
    ]
    assert [a.status_code for a in attempts] == [404] * len(attempts)
    assert api.http.get("/ssf/streams", headers=other).json() == []
    # Untouched: still the owner's, still enabled, no verification queued.
    assert api.http.get("/ssf/status", params={"stream_id": sid}, headers=owner).json() == {
        "stream_id": sid,
        "status": "enabled",
    }
    assert poll(api, owner, stream).json()["sets"] == {}


def test_create_read_update_replace_delete(api: Api) -> None:
    auth = receiver_token(api)
    stream = create(api, auth, events_requested=[SESSION_REVOKED, "urn:example:unknown"])
    sid = stream["stream_id"]
    assert stream["iss"] == api.url
    assert stream["delivery"] == {
        "method": "urn:ietf:rfc:8936",
        "endpoint_url": f"{api.url}/ssf/poll/{sid}",
    }
    assert stream["events_delivered"] == [SESSION_REVOKED]
    assert api.http.get("/ssf/streams", headers=auth).json() == [stream]

    patched = api.http.patch(
        "/ssf/streams", json={"stream_id": sid, "description": "risk engine"}, headers=auth
    ).json()
    assert patched["description"] == "risk engine"
    assert patched["events_delivered"] == [SESSION_REVOKED]
    replaced = api.http.put(
        "/ssf/streams",
        json={"stream_id": sid, "events_requested": [ACCOUNT_DISABLED]},
        headers=auth,
    ).json()
    assert replaced["events_delivered"] == [ACCOUNT_DISABLED]
    assert "description" not in replaced

    read_only = api.http.patch(
        "/ssf/streams", json={"stream_id": sid, "iss": "https://evil.example"}, headers=auth
    )
    assert read_only.status_code == 400
    assert (
        api.http.delete("/ssf/streams", params={"stream_id": sid}, headers=auth).status_code == 204
    )
    gone = api.http.get("/ssf/streams", params={"stream_id": sid}, headers=auth)
    assert gone.status_code == 404


def test_bad_requests_are_400_not_500(api: Api) -> None:
    auth = receiver_token(api)
    stream = create(api, auth)
    bad = [
        api.http.post("/ssf/streams", json={"iss": api.url}, headers=auth),
        api.http.post("/ssf/streams", json={"delivery": {"method": "smoke"}}, headers=auth),
        api.http.post(
            "/ssf/streams",
            json={"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "http://x.test/"}},
            headers=auth,
        ),
        api.http.post(
            "/ssf/streams", content=b"{", headers={**auth, "content-type": "application/json"}
        ),
        api.http.post("/ssf/streams", json=[1], headers=auth),
        api.http.post(
            "/ssf/status", json={"stream_id": stream["stream_id"], "status": "x"}, headers=auth
        ),
        poll(api, auth, stream, maxEvents=-1),
        poll(api, auth, stream, ack="not-a-list"),
    ]
    assert [b.status_code for b in bad] == [400] * len(bad), [b.text for b in bad]
    assert all(b.json()["error"] == "invalid_request" for b in bad)


def test_paused_streams_hold_sets_and_disabled_ones_drop_them(api: Api) -> None:
    auth = receiver_token(api)
    stream = create(api, auth, events_requested=[ACCOUNT_DISABLED])
    sid = stream["stream_id"]

    def set_status(status: str) -> None:
        answer = api.http.post(
            "/ssf/status", json={"stream_id": sid, "status": status}, headers=auth
        )
        assert answer.status_code == 200 and answer.json()["status"] == status

    def block_someone() -> None:
        name, _ = api.new_user()
        assert api.admin("POST", f"/admin/users/{name}/block").status_code == 200

    set_status("paused")
    block_someone()
    assert poll(api, auth, stream).json()["sets"] == {}
    set_status("enabled")
    assert len(poll(api, auth, stream).json()["sets"]) == 1

    set_status("disabled")
    block_someone()
    set_status("enabled")
    # The held SET was dropped on disabling, and nothing was written while disabled.
    assert poll(api, auth, stream).json()["sets"] == {}
