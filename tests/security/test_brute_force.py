"""Password guessing: back-off, then a lock an admin lifts; per account and per address.

Small limits so the run is short: 3 free failures, a 1 s back-off after the 4th,
a lock at the 5th. Every attacker gets a loopback address of its own
(127.0.0.x), so the admin and the legitimate users on 127.0.0.1 stay unaffected
by the address limits, exactly as a remote attacker would not share theirs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.security_stack import Stack, assert_no_internals, from_address, start_stack

LIMITS = {
    "login_max_failures": 3,
    "login_lock_after": 5,
    "login_lock_seconds": 120,
    "rate_limit_per_minute": 40,
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(tmp_path_factory.mktemp("brute"), **LIMITS) as stack:
        yield stack


@pytest.fixture(scope="module")
def admin(stack: Stack) -> dict[str, str]:
    """One admin token for the module (each login would count against the rate limit)."""
    return stack.api.bearer(stack.api.admin_token())


def _login(http: httpx.Client, username: str, password: str) -> httpx.Response:
    return http.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": username,
            "password": password,
            "client_id": "web",
        },
    )


def _answer(response: httpx.Response) -> tuple[int, str, str | None]:
    assert_no_internals(response.text)
    return response.status_code, response.json()["error"], response.headers.get("retry-after")


BAD = (400, "invalid_grant", None)


def _audit(stack: Stack, admin: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = stack.api.http.get("/admin/audit", params=params, headers=admin)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_back_off_then_lock_then_admin_unlock(stack: Stack, admin: dict[str, str]) -> None:
    api = stack.api
    victim, password = api.new_user()
    with from_address(api.url, "127.0.0.11") as attacker:
        for _ in range(4):  # three free failures, and the one that starts the back-off
            assert _answer(_login(attacker, victim, "guess-123456")) == BAD
        backing_off = _answer(_login(attacker, victim, "guess-123456"))
        assert backing_off == (429, "slow_down", "1")
        # Even the right password is refused during the back-off, from anywhere.
        assert _answer(_login(attacker, victim, password))[0] == 429
        assert _answer(_login(api.http, victim, password))[0] == 429
        time.sleep(1.1)
        assert _answer(_login(attacker, victim, "guess-123456")) == BAD  # the 5th: locks
        status, error, retry_after = _answer(_login(attacker, victim, "guess-123456"))
        assert (status, error) == (429, "slow_down")
        assert retry_after is not None and 100 <= int(retry_after) <= 120
        # Locked: the owner on their own address cannot get in either...
        assert _answer(_login(api.http, victim, password))[0] == 429
        # ...and the attacker's address is locked for every account (password spraying).
        other, other_password = api.new_user()
        assert _answer(_login(attacker, other, other_password))[0] == 429

    locks = _audit(stack, admin, action="lockout", subject=victim)
    assert [(e["outcome"], e["client_ip"]) for e in locks] == [("locked", "127.0.0.11")]
    failures = _audit(stack, admin, action="login", subject=victim, outcome="failure")
    assert len(failures) == 5
    assert {e["client_ip"] for e in failures} == {"127.0.0.11"}
    assert all(e["details"].get("reason") == "bad_password" for e in failures), failures

    unlocked = api.http.post(f"/admin/users/{victim}/unlock", headers=admin)
    assert unlocked.status_code == 200, unlocked.text
    assert _login(api.http, victim, password).status_code == 200
    (event,) = _audit(stack, admin, action="unlock", subject=victim)
    assert (event["actor"], event["client_ip"], event["outcome"]) == (
        "admin",
        "127.0.0.1",
        "success",
    )


def test_locked_account_and_unknown_account_answer_alike(stack: Stack) -> None:
    """Step by step, a real account and a made-up one get the very same answers."""
    api = stack.api
    real, password = api.new_user()
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    with (
        from_address(api.url, "127.0.0.21") as one,
        from_address(api.url, "127.0.0.22") as two,
    ):
        steps: list[tuple[Any, Any]] = []
        for step in range(7):
            if step == 5:
                time.sleep(1.1)  # past the back-off: the 5th failure locks
            steps.append(
                (
                    _answer(_login(one, real, f"guess-{step}-xyz")),
                    _answer(_login(two, ghost, f"guess-{step}-xyz")),
                )
            )
        # Locked: the right password answers the same as a guess at a made-up name.
        steps.append((_answer(_login(one, real, password)), _answer(_login(two, ghost, password))))
    # A fresh address probing both: the lock is per account, alike for a made-up one.
    with from_address(api.url, "127.0.0.23") as probe:
        steps.append(
            (_answer(_login(probe, real, password)), _answer(_login(probe, ghost, "x" * 12)))
        )
    for mine, theirs in steps:
        assert mine[:2] == theirs[:2], steps
        # Retry-After counts down in whole seconds: the two requests are a moment apart.
        assert (mine[2] is None) == (theirs[2] is None), steps
        if mine[2] is not None:
            assert abs(int(mine[2]) - int(theirs[2])) <= 1, steps
    assert [s[0][0] for s in steps] == [400, 400, 400, 400, 429, 400, 429, 429, 429], steps


def test_token_endpoint_is_rate_limited_per_address(stack: Stack) -> None:
    api = stack.api
    with from_address(api.url, "127.0.0.41") as flooder:
        answers = [
            flooder.post("/oauth/token", data={"grant_type": "client_credentials"})
            for _ in range(LIMITS["rate_limit_per_minute"] + 5)
        ]
    statuses = [r.status_code for r in answers]
    assert 429 in statuses, statuses
    first = statuses.index(429)
    assert first >= LIMITS["rate_limit_per_minute"] - 1, statuses
    limited = answers[first]
    assert limited.json()["error"] == "slow_down"
    assert int(limited.headers["retry-after"]) >= 1
    # Another address is not affected.
    assert api.password_grant().status_code == 200


def test_guessing_the_current_password_on_the_account_endpoint_is_limited(
    stack: Stack, admin: dict[str, str]
) -> None:
    """A stolen access token does not give unlimited guesses at the current password."""
    api = stack.api
    user, password = api.new_user()
    with from_address(api.url, "127.0.0.51") as guesser:
        token = _login(guesser, user, password).json()["access_token"]
        answers = []
        for n in range(LIMITS["rate_limit_per_minute"] + 5):
            response = guesser.post(
                "/account/password",
                json={"current_password": f"guess-{n}", "new_password": "new-password-12345"},
                headers=api.bearer(token),
            )
            assert_no_internals(response.text)
            answers.append(response)
    statuses = [r.status_code for r in answers]
    assert statuses[0] == 403, statuses
    assert 429 in statuses[: LIMITS["login_max_failures"] + 3], statuses
    limited = answers[statuses.index(429)]
    assert limited.json()["error"] == "slow_down"
    assert int(limited.headers["retry-after"]) >= 1
    assert statuses[-1] == 429, statuses
    # The guesses locked the account like failed logins; unlocked, the old password works.
    assert _login(api.http, user, password).status_code == 429
    assert api.http.post(f"/admin/users/{user}/unlock", headers=admin).status_code == 200
    assert _login(api.http, user, password).status_code == 200
