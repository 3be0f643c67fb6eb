"""Revocation reaches every running service within a second.

A token already accepted (and cached as verified) by the FastAPI, Flask and
Strawberry services is refused by each of them within one second of the
auth server answering the block, password change, logout-everywhere, forced
logout or token revocation. The feed's heartbeat is 2 s here, so these figures
come from the stream being woken, not from a poll. Latencies go to the log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from authmesh.testing import wait_for
from support.acceptance import Stack, measure_rejection, report_latency
from support.harness import Api, claims_of

BOUND = 1.0


def _block(api: Api, name: str, password: str, token: str) -> httpx.Response:
    return api.admin("POST", f"/admin/users/{name}/block")


def _password_change(api: Api, name: str, password: str, token: str) -> httpx.Response:
    return api.http.post(
        "/account/password",
        json={"current_password": password, "new_password": password + "-new"},
        headers=api.bearer(token),
    )


def _logout_all(api: Api, name: str, password: str, token: str) -> httpx.Response:
    return api.http.post("/account/logout", params={"all": "true"}, headers=api.bearer(token))


def _force_logout(api: Api, name: str, password: str, token: str) -> httpx.Response:
    return api.admin("POST", f"/admin/users/{name}/logout")


def _revoke_jti(api: Api, name: str, password: str, token: str) -> httpx.Response:
    return api.revoke(token, token_type_hint="access_token")


ACTIONS: dict[str, Callable[[Api, str, str, str], httpx.Response]] = {
    "block": _block,
    "password-change": _password_change,
    "logout-all": _logout_all,
    "force-logout": _force_logout,
    "revoke-jti": _revoke_jti,
}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_revocation_reaches_every_service_within_a_second(
    stack: Stack, action: str, record_property: Any
) -> None:
    api = stack.issuer.api
    services = stack.services
    name, password = api.new_user()
    token = str(api.login(name, password)["access_token"])
    # A second session of the same user: a jti revocation must leave it alone.
    other = str(api.login(name, password)["access_token"])
    for service in services.values():
        assert service.accepts(token) and service.accepts(token)  # now cached as verified
        wait_for(service.feed_connected)

    response = ACTIONS[action](api, name, password, token)
    assert response.status_code in (200, 204), response.text
    latencies = measure_rejection(services, token)

    report_latency(action, latencies)
    record_property("revocation_latency_ms", {k: round(v * 1000, 1) for k, v in latencies.items()})
    assert max(latencies.values()) < BOUND, latencies
    for service in services.values():
        response = service.whoami(token)
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert (
            "revoked" in response.json()["error_description"]
            or "ended" in (response.json()["error_description"])
        )
        assert service.accepts(other) is (action == "revoke-jti")


def test_after_a_password_change_a_new_login_is_accepted_at_once(stack: Stack) -> None:
    api = stack.issuer.api
    name, password = api.new_user()
    old = str(api.login(name, password)["access_token"])
    response = _password_change(api, name, password, old)
    assert response.status_code == 204, response.text

    new = str(api.login(name, password + "-new")["access_token"])

    # Same second as the password change: the subject event must not cover it.
    assert claims_of(new)["sub"] == claims_of(old)["sub"]
    for service in stack.services.values():
        wait_for(lambda s=service: not s.accepts(old), timeout=BOUND)
        assert service.accepts(new)


def test_a_blocked_user_cannot_come_back_with_a_new_login(stack: Stack) -> None:
    api = stack.issuer.api
    name, password = api.new_user()
    assert api.admin("POST", f"/admin/users/{name}/block").status_code == 200

    response = api.password_grant(name, password)

    assert response.status_code in (400, 401), response.text
    assert "access_token" not in response.json()
