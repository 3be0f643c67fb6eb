"""A receiver written from the specs alone receives and verifies every Shared Signals event.

The receiver (``support.ssf_receiver``) uses joserfc and httpx only; every event
the server announces is a SET it verifies with the JWKS from the metadata.
"""

from __future__ import annotations

import uuid

import pytest

from authmesh.server import clients
from support.harness import Api
from support.ssf_receiver import SpecReceiver

pytestmark = pytest.mark.filterwarnings(
    "ignore:EdDSA is deprecated via RFC 9864:joserfc.errors.SecurityWarning"
)

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
ACCOUNT_ENABLED = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
ALL = [SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED, ACCOUNT_ENABLED]


def receiver(api: Api, events: list[str] = ALL) -> SpecReceiver:
    """A new receiver client (scope ``ssf:stream``) with a poll stream of its own."""
    client_id = f"rx-{uuid.uuid4().hex[:10]}"
    new = api.server.call(
        clients.register_client(api.core, client_id=client_id, scopes=["ssf:stream"])
    )
    assert new.secret is not None
    rx = SpecReceiver(api.url, client_id, new.secret)
    rx.create_stream(events)
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
