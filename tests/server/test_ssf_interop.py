"""A receiver written from the specs alone receives and verifies every Shared Signals event.

The receiver (``support.ssf_receiver``) uses joserfc and httpx only; every event
the server announces is a SET it verifies with the JWKS from the metadata.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from authmesh.server import clients
from authmesh.testing import wait_for
from support.harness import Api
from support.ssf_receiver import PUSH, SpecReceiver, push_endpoint

pytestmark = pytest.mark.filterwarnings(
    "ignore:EdDSA is deprecated via RFC 9864:joserfc.errors.SecurityWarning"
)

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
ACCOUNT_ENABLED = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
ALL = [SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED, ACCOUNT_ENABLED]


def receiver(
    api: Api, events: list[str] = ALL, delivery: dict[str, Any] | None = None
) -> SpecReceiver:
    """A new receiver client (scope ``ssf:stream``) with a stream of its own (poll by default)."""
    client_id = f"rx-{uuid.uuid4().hex[:10]}"
    new = api.server.call(
        clients.register_client(api.core, client_id=client_id, scopes=["ssf:stream"])
    )
    assert new.secret is not None
    rx = SpecReceiver(api.url, client_id, new.secret)
    rx.create_stream(events, delivery)
    return rx


def test_metadata_names_the_endpoints_and_both_delivery_methods(api: Api) -> None:
    doc = api.http.get("/.well-known/ssf-configuration").json()
    assert doc["issuer"] == api.url
    assert doc["jwks_uri"] == f"{api.url}/.well-known/jwks.json"
    assert set(doc["delivery_methods_supported"]) == {"urn:ietf:rfc:8935", "urn:ietf:rfc:8936"}
    for name in ("configuration_endpoint", "status_endpoint", "verification_endpoint"):
        assert doc[name].startswith(api.url + "/ssf/")


def test_every_revocation_reaches_a_spec_receiver_as_a_verified_set(api: Api) -> None:
    rx = receiver(api)
    try:
        rx.request_verification("hello")
        name, password = api.new_user()
        sub = api.user_id(name)
        tokens = api.login(name, password)
        sid = api.verify(tokens["access_token"], "orders")["sid"]
        # Token revocation (RFC 7009) of an access token: a jwt_id subject.
        victim = api.login(name, password)["access_token"]
        jti = api.verify(victim, "orders")["jti"]
        assert api.revoke(victim).status_code == 200
        # Logout of one session, then a password change, a block and an unblock.
        assert (
            api.http.post("/account/logout", headers=api.bearer(tokens["access_token"])).status_code
            == 204
        )
        fresh = api.login(name, password)["access_token"]
        change = api.http.post(
            "/account/password",
            json={"current_password": password, "new_password": password + "-2"},
            headers=api.bearer(fresh),
        )
        assert change.status_code == 204, change.text
        assert api.admin("POST", f"/admin/users/{name}/block").status_code == 200
        assert api.admin("POST", f"/admin/users/{name}/unblock").status_code == 200

        got = rx.receive_all()
    finally:
        rx.close()
    assert all(e.header["typ"] == "secevent+jwt" and e.header.get("kid") for e in got)
    by_type: dict[str, list[dict[str, object]]] = {}
    for e in got:
        by_type.setdefault(e.event_type, []).append(e.subject)
    user = {"format": "iss_sub", "iss": api.url, "sub": sub}
    assert by_type[VERIFICATION] == [{"format": "opaque", "id": rx.stream["stream_id"]}]
    assert {"format": "jwt_id", "iss": api.url, "jti": jti} in by_type[SESSION_REVOKED]
    assert {
        "format": "complex",
        "session": {"format": "opaque", "id": sid},
        "user": user,
    } in by_type[SESSION_REVOKED]
    assert by_type[CREDENTIAL_CHANGE] == [user]
    assert by_type[ACCOUNT_DISABLED] == [user]
    assert by_type[ACCOUNT_ENABLED] == [user]
    # Verification state is echoed; CAEP members say who acted and when.
    payloads = {e.event_type: e.payload for e in got}
    assert payloads[VERIFICATION] == {"state": "hello"}
    assert payloads[CREDENTIAL_CHANGE]["credential_type"] == "password"
    assert payloads[CREDENTIAL_CHANGE]["change_type"] == "update"
    assert payloads[ACCOUNT_DISABLED]["initiating_entity"] == "admin"
    assert isinstance(payloads[SESSION_REVOKED]["event_timestamp"], int | float)


def test_unacknowledged_sets_are_delivered_again_and_acked_ones_never(api: Api) -> None:
    rx = receiver(api)
    try:
        name, _ = api.new_user()
        assert api.admin("POST", f"/admin/users/{name}/block").status_code == 200
        first, _ = rx.poll()
        assert first
        # A receiver that crashed before acknowledging gets the same SETs again.
        again, _ = rx.poll()
        assert again == first
        rest, _ = rx.poll(ack=list(first))
        assert rest == {}
    finally:
        rx.close()


def test_max_events_pages_with_more_available(api: Api) -> None:
    rx = receiver(api)
    try:
        for _ in range(3):
            rx.request_verification("x")
        page, more = rx.poll(max_events=2)
        assert len(page) == 2 and more
        last, more = rx.poll(ack=list(page), max_events=2)
        assert len(last) == 1 and not more
    finally:
        rx.close()


def test_a_stream_receives_only_the_event_types_it_asked_for(api: Api) -> None:
    rx = receiver(api, events=[ACCOUNT_DISABLED])
    try:
        name, _ = api.new_user()
        assert api.admin("POST", f"/admin/users/{name}/block").status_code == 200
        got = rx.receive_all()
    finally:
        rx.close()
    assert [e.event_type for e in got] == [ACCOUNT_DISABLED]


@pytest.fixture
def pushing(start_server: Callable[..., Api]) -> Api:
    """A server that may push to plain-http loopback endpoints and retries quickly."""
    return start_server(ssf_allow_http_push=True, ssf_push_retry_initial=0.05)


def test_push_delivery_reaches_a_spec_endpoint_with_its_authorization(pushing: Api) -> None:
    api = pushing
    with push_endpoint() as endpoint:
        rx = receiver(
            api,
            delivery={
                "method": PUSH,
                "endpoint_url": endpoint.url,
                "authorization_header": "Bearer rx-secret",
            },
        )
        try:
            assert rx.stream["delivery"] == {"method": PUSH, "endpoint_url": endpoint.url}
            name, _ = api.new_user()
            assert api.admin("POST", f"/admin/users/{name}/block").status_code == 200
            wait_for(lambda: len(endpoint.accepted()) >= 1, timeout=5)
            keys = rx.key_set()
            headers, body = endpoint.received[0]
            event = rx.verify(claims_jti(body.decode()), body.decode(), keys)
        finally:
            rx.close()
    assert headers["content-type"] == "application/secevent+jwt"
    assert headers["authorization"] == "Bearer rx-secret"
    assert event.event_type == ACCOUNT_DISABLED
    assert event.subject == {"format": "iss_sub", "iss": api.url, "sub": api.user_id(name)}


def test_push_retries_with_back_off_until_accepted_and_keeps_order(pushing: Api) -> None:
    api = pushing
    with push_endpoint() as endpoint:
        endpoint.script = [503, 503, 500]
        rx = receiver(api, delivery={"method": PUSH, "endpoint_url": endpoint.url})
        try:
            for _ in range(2):
                rx.request_verification("in order")
            wait_for(lambda: len(endpoint.accepted()) == 2, timeout=10)
        finally:
            rx.close()
    statuses = [h["status"] for h, _ in endpoint.received]
    assert statuses == ["503", "503", "500", "202", "202"]
    first = endpoint.received[0][1]
    # The failing SET was retried and the second waited behind it.
    assert [b for _, b in endpoint.received[:4]] == [first] * 4
    assert endpoint.received[4][1] != first


def test_a_push_refused_with_400_is_not_sent_again(pushing: Api) -> None:
    api = pushing
    with push_endpoint() as endpoint:
        endpoint.script = [400]
        rx = receiver(api, delivery={"method": PUSH, "endpoint_url": endpoint.url})
        try:
            rx.request_verification("refused")
            rx.request_verification("next")
            wait_for(lambda: len(endpoint.received) >= 2, timeout=5)
        finally:
            rx.close()
    assert [h["status"] for h, _ in endpoint.received] == ["400", "202"]
    assert endpoint.received[0][1] != endpoint.received[1][1]


def claims_jti(token: str) -> str:
    """The ``jti`` of a SET, read without verification (to name it to ``verify``)."""
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"])


def test_a_receiver_back_online_is_not_left_waiting_out_the_back_off(
    start_server: Callable[..., Api],
) -> None:
    api = start_server(ssf_allow_http_push=True, ssf_push_retry_initial=60.0)
    with push_endpoint() as endpoint:
        endpoint.script = [503]
        rx = receiver(api, delivery={"method": PUSH, "endpoint_url": endpoint.url})
        try:
            rx.request_verification("after the outage")
            wait_for(lambda: len(endpoint.received) == 1, timeout=5)
            # The next attempt is 30-60 s away; the receiver updating its stream brings it forward.
            answer = rx.http.patch(
                rx.metadata["configuration_endpoint"],
                json={"stream_id": rx.stream["stream_id"], "description": "back"},
                headers=rx.headers,
            )
            assert answer.status_code == 200, answer.text
            wait_for(lambda: len(endpoint.accepted()) == 1, timeout=5)
        finally:
            rx.close()
    assert endpoint.received[0][1] == endpoint.received[1][1]
