"""The audit trail: every security event, with time, actor, subject, client address and
outcome, through ``GET /admin/audit`` (with filters) and the ``authmesh audit`` CLI.

One story is played once against a real server: an account is created, logs in,
is guessed at from another address until locked, unlocked, blocked and unblocked,
re-roled, changes its password, logs out, has a refresh token replayed, is forced
out; a key is rotated with the operator CLI; a client is registered and deleted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.security_stack import Stack, from_address, start_stack

EXE = Path(sys.executable).parent / "authmesh"
ATTACKER = "127.0.0.77"


@dataclass
class Story:
    stack: Stack
    user: str
    client: str
    started: float
    ended: float
    admin: dict[str, str]

    def audit(self, **params: Any) -> list[dict[str, Any]]:
        response = self.stack.api.http.get("/admin/audit", params=params, headers=self.admin)
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        return events


def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHMESH_")}
    env["COLUMNS"] = "250"
    done = subprocess.run(
        [str(EXE), *args, "--database-url", stack.db_url, "--data-dir", str(stack.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    limits = {"login_max_failures": 3, "login_lock_after": 3, "refresh_reuse_grace": 0}
    with start_stack(tmp_path_factory.mktemp("audit"), **limits) as stack:
        api = stack.api
        started = time.time() - 1
        admin = api.bearer(api.admin_token())
        user, password = f"aud-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"

        def call(method: str, path: str, **kwargs: Any) -> None:
            response = api.http.request(method, path, headers=admin, **kwargs)
            assert response.is_success, (path, response.text)

        call("POST", "/admin/users", json={"username": user, "password": password})
        api.login(user, password)
        with from_address(api.url, ATTACKER) as attacker:
            for n in range(3):
                attacker.post(
                    "/oauth/token",
                    data={
                        "grant_type": "password",
                        "username": user,
                        "password": f"guess-{n}",
                        "client_id": "web",
                    },
                )
        call("POST", f"/admin/users/{user}/unlock")
        call("POST", f"/admin/users/{user}/block")
        call("POST", f"/admin/users/{user}/unblock")
        call("PUT", f"/admin/users/{user}/roles", json={"roles": ["user", "clerk"]})
        own = api.login(user, password)
        new_password = f"new-{uuid.uuid4().hex}"
        changed = api.http.post(
            "/account/password",
            json={"current_password": password, "new_password": new_password},
            headers=api.bearer(own["access_token"]),
        )
        assert changed.status_code == 204
        session = api.login(user, new_password)
        assert api.http.post(
            "/account/logout", headers=api.bearer(session["access_token"])
        ).is_success
        session = api.login(user, new_password)
        assert api.refresh(session["refresh_token"]).is_success
        assert api.refresh(session["refresh_token"]).status_code == 400  # the replay
        call("POST", f"/admin/users/{user}/logout")
        client = f"aud-svc-{uuid.uuid4().hex[:6]}"
        call("POST", "/admin/clients", json={"client_id": client})
        call("DELETE", f"/admin/clients/{client}")
        _cli(stack, "keys", "rotate")
        yield Story(stack, user, client, started, time.time() + 1, admin)


# (action, filters beyond the action, expected actor, client address, outcome)
EXPECTED: dict[str, tuple[str, dict[str, str], str | None, str | None, str]] = {
    "user-created": ("user_create", {"subject": "$user"}, "admin", "127.0.0.1", "success"),
    "login-success": (
        "login",
        {"subject": "$user", "outcome": "success"},
        "web",
        "127.0.0.1",
        "success",
    ),
    "login-failure": (
        "login",
        {"subject": "$user", "outcome": "failure"},
        "web",
        ATTACKER,
        "failure",
    ),
    "lockout": ("lockout", {"subject": "$user"}, "web", ATTACKER, "locked"),
    "unlock": ("unlock", {"subject": "$user"}, "admin", "127.0.0.1", "success"),
    "block": ("block", {"subject": "$user"}, "admin", "127.0.0.1", "success"),
    "unblock": ("unblock", {"subject": "$user"}, "admin", "127.0.0.1", "success"),
    "role-change": ("role_change", {"subject": "$user"}, "admin", "127.0.0.1", "success"),
    "password-change": ("password_change", {"subject": "$user"}, "$user", "127.0.0.1", "success"),
    "logout": ("logout", {"subject": "$user"}, "$user", "127.0.0.1", "success"),
    "refresh-reuse": ("refresh_reuse", {"subject": "$user"}, "web", "127.0.0.1", "revoked"),
    "force-logout": ("force_logout", {"subject": "$user"}, "admin", "127.0.0.1", "success"),
    "client-create": ("client_create", {"subject": "$client"}, "admin", "127.0.0.1", "success"),
    "client-delete": ("client_delete", {"subject": "$client"}, "admin", "127.0.0.1", "success"),
    "key-rotation": ("key_rotate", {}, "cli", None, "success"),
}


def _fill(value: str | None, story: Story) -> str | None:
    return {"$user": story.user, "$client": story.client}.get(value or "", value)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_event_is_recorded_with_who_what_when_where(story: Story, name: str) -> None:
    action, filters, actor, address, outcome = EXPECTED[name]
    params = {"action": action, **{k: str(_fill(v, story)) for k, v in filters.items()}}
    events = story.audit(**params)
    assert events, params
    event = events[0]
    assert event["action"] == action
    assert event["actor"] == _fill(actor, story)
    assert event["client_ip"] == address
    assert event["outcome"] == outcome
    assert story.started <= event["at"] <= story.ended
    if "subject" in filters:
        assert event["subject"] == _fill(filters["subject"], story)


def test_filters_select_exactly(story: Story) -> None:
    failures = story.audit(subject=story.user, outcome="failure")
    assert len(failures) == 3 and {e["action"] for e in failures} == {"login"}
    by_admin = story.audit(actor="admin", limit=1000)
    assert by_admin and {e["actor"] for e in by_admin} == {"admin"}
    everything = story.audit(limit=1000)
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids, reverse=True), "newest first"
    page = story.audit(limit=2, before_id=ids[1])
    assert [e["id"] for e in page] == ids[2:4]
    assert story.audit(until=story.started - 10) == []
    recent = story.audit(since=story.started, limit=1000)
    assert {e["action"] for e in recent} >= {a for a, *_ in EXPECTED.values()}


def test_the_audit_endpoint_is_for_admins_only(story: Story) -> None:
    api = story.stack.api
    user, password = api.new_user()
    token = api.login(user, password)["access_token"]
    assert api.http.get("/admin/audit", headers=api.bearer(token)).status_code == 403
    assert api.http.get("/admin/audit").status_code == 401


def test_the_cli_shows_the_same_trail(story: Story) -> None:
    done = _cli(story.stack, "audit", "--json", "--subject", story.user, "--limit", "1000")
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    api_events = story.audit(subject=story.user, limit=1000)
    assert lines == api_events
    assert {e["action"] for e in lines} >= {"login", "lockout", "block", "password_change"}
    lockouts = _cli(story.stack, "audit", "--json", "--action", "lockout", "--outcome", "locked")
    (event,) = [json.loads(line) for line in lockouts.stdout.splitlines() if line.strip()]
    assert (event["subject"], event["client_ip"]) == (story.user, ATTACKER)
    table = _cli(story.stack, "audit", "--subject", story.user, "--action", "block").stdout
    assert "block" in table and story.user in table and "admin" in table and "127.0.0.1" in table
