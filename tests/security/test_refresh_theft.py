"""Refresh-token theft (RFC 9700 §4.14.2): a reused refresh token ends the whole session.

The server's grace window for racing duplicates is 0.5 s here; the attacker waits
it out, as a thief replaying a token copied earlier would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from authmesh.testing import wait_for
from support.security_stack import Stack, assert_invalid_token, start_stack

GRACE = 0.5


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(tmp_path_factory.mktemp("theft"), refresh_reuse_grace=GRACE) as stack:
        yield stack


def _refresh(stack: Stack, token: str) -> tuple[int, dict[str, Any]]:
    response = stack.api.refresh(token)
    return response.status_code, response.json()


def _assert_invalid_grant(status: int, body: dict[str, Any]) -> None:
    assert (status, body["error"]) == (400, "invalid_grant"), body
    assert set(body) == {"error", "error_description"}


def test_replayed_rotated_token_revokes_the_session(stack: Stack) -> None:
    """The legitimate client rotated; the thief replays the old token."""
    api, service = stack.api, stack.service
    user = api.new_user()
    first = api.login(*user)
    status, second = _refresh(stack, first["refresh_token"])  # the legitimate rotation
    assert status == 200
    assert service.me(second["access_token"]).status_code == 200
    time.sleep(GRACE + 0.1)

    status, body = _refresh(stack, first["refresh_token"])  # the thief
    replayed_at = time.monotonic()
    _assert_invalid_grant(status, body)

    # The legitimate client's access token dies in the service within a second...
    waited = wait_for(lambda: service.me(second["access_token"]).status_code == 401, 3)
    assert time.monotonic() - replayed_at < 1.0, waited
    assert_invalid_token(service.me(second["access_token"]))
    assert_invalid_token(api.userinfo(second["access_token"]))
    # ...and so does its current refresh token: the whole session is over.
    _assert_invalid_grant(*_refresh(stack, second["refresh_token"]))
    # Logging in again opens a new, working session.
    assert service.me(api.login(*user)["access_token"]).status_code == 200


def test_thief_who_rotates_first_loses_the_stolen_session(stack: Stack) -> None:
    """The thief uses the current token first; the victim's next refresh is a reuse."""
    api, service = stack.api, stack.service
    user = api.new_user()
    victim = api.login(*user)
    status, thief = _refresh(stack, victim["refresh_token"])  # stolen, used first
    assert status == 200
    assert service.me(thief["access_token"]).status_code == 200
    time.sleep(GRACE + 0.1)

    status, body = _refresh(stack, victim["refresh_token"])  # the victim, innocently
    detected_at = time.monotonic()
    _assert_invalid_grant(status, body)
    wait_for(lambda: service.me(thief["access_token"]).status_code == 401, 3)
    assert time.monotonic() - detected_at < 1.0
    assert_invalid_token(api.userinfo(thief["access_token"]))
    _assert_invalid_grant(*_refresh(stack, thief["refresh_token"]))


def test_reuse_is_audited_with_the_session(stack: Stack) -> None:
    api = stack.api
    user = api.new_user()
    first = api.login(*user)
    assert _refresh(stack, first["refresh_token"])[0] == 200
    time.sleep(GRACE + 0.1)
    _assert_invalid_grant(*_refresh(stack, first["refresh_token"]))
    events = api.admin("GET", "/admin/audit", params={"action": "refresh_reuse"}).json()["events"]
    mine = [e for e in events if e["subject"] == user[0]]
    assert len(mine) == 1, events
    event = mine[0]
    assert event["client_ip"] == "127.0.0.1"
    assert event["client_id"] == "web"
    assert event["outcome"] not in ("success", "", None)
    assert first["refresh_token"] not in str(event)


def test_a_refresh_token_from_another_client_is_refused(stack: Stack) -> None:
    """A stolen refresh token is bound to its client: another client cannot redeem it."""
    api = stack.api
    made = api.admin(
        "POST",
        "/admin/clients",
        json={
            "client_id": "thief-app",
            "public": True,
            "grant_types": ["password", "refresh_token"],
            "audiences": ["orders"],
        },
    )
    assert made.status_code == 201, made.text
    victim = api.login(*api.new_user())
    response = api.refresh(victim["refresh_token"], client_id="thief-app")
    _assert_invalid_grant(response.status_code, response.json())
    # The victim's session is untouched by the failed attempt.
    assert _refresh(stack, victim["refresh_token"])[0] == 200
