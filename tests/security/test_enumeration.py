"""User enumeration: an unknown user, a wrong password and a blocked account look alike.

By status, body and headers; and by timing, measured interleaved so that load
on a small machine hits both sides alike. The timing test runs the server with
a costly Argon2 (RFC 9106's low-memory profile, ~140 ms, ten times the
default): a login path that skipped the hash for unknown users would then stand
out far beyond the noise of a shared 2-core machine.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from support.security_stack import Stack, assert_no_internals, start_stack

COSTLY_ARGON2 = {"argon2_time_cost": 3, "argon2_memory_cost": 65536, "argon2_parallelism": 4}
ROUNDS = 12
#: Allowed gap between the medians: 25% of the slower one, or 50 ms if that is more.
RELATIVE, ABSOLUTE = 0.25, 0.050
#: Headers that differ between any two responses.
VOLATILE = {"date", "content-length"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(tmp_path_factory.mktemp("enum"), **COSTLY_ARGON2) as stack:
        yield stack


def _attempt(http: httpx.Client, username: str, password: str) -> httpx.Response:
    return http.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": username,
            "password": password,
            "client_id": "web",
        },
    )


def _shape(response: httpx.Response) -> tuple[int, str, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k.lower() not in VOLATILE}
    return response.status_code, response.text, headers


def test_unknown_user_wrong_password_and_blocked_account_answer_alike(stack: Stack) -> None:
    api = stack.api
    existing, password = api.new_user()
    blocked, blocked_password = api.new_user()
    assert api.admin("POST", f"/admin/users/{blocked}/block").status_code == 200
    http = api.http
    answers = {
        "unknown user": _attempt(http, f"nobody-{uuid.uuid4().hex[:8]}", password),
        "wrong password": _attempt(http, existing, password + "x"),
        "empty-ish password": _attempt(http, existing, " "),
        "blocked, right password": _attempt(http, blocked, blocked_password),
        "blocked, wrong password": _attempt(http, blocked, "wrong-password-123"),
    }
    shapes = {name: _shape(r) for name, r in answers.items()}
    reference = shapes["unknown user"]
    assert reference[0] == 400
    assert answers["unknown user"].json() == {
        "error": "invalid_grant",
        "error_description": "invalid username or password",
    }
    for name, shape in shapes.items():
        assert shape == reference, (name, shape, reference)
        assert_no_internals(shape[1])
    # The control: the right password does get in.
    assert _attempt(http, existing, password).status_code == 200


def _timed(http: httpx.Client, username: str, password: str) -> float:
    started = time.perf_counter()
    response = _attempt(http, username, password)
    elapsed = time.perf_counter() - started
    assert response.status_code == 400, response.text
    return elapsed


def test_unknown_user_costs_the_same_time_as_a_wrong_password(stack: Stack) -> None:
    api = stack.api
    existing, _ = api.new_user()
    unknown = [f"ghost-{uuid.uuid4().hex[:10]}" for _ in range(ROUNDS + 2)]
    http = api.http
    # Warm up both paths (the dummy hash is made on first use; connections; caches).
    for name in unknown[:2]:
        _timed(http, name, "wrong-password-123")
        _timed(http, existing, "wrong-password-123")
    samples: dict[str, list[float]] = {"unknown": [], "wrong": []}
    rng = random.Random(6)
    for name in unknown[2:]:
        pair = [("unknown", name), ("wrong", existing)]
        rng.shuffle(pair)  # neither side always goes first
        for kind, username in pair:
            samples[kind].append(_timed(http, username, f"wrong-{uuid.uuid4().hex}"))
    unknown_median = statistics.median(samples["unknown"])
    wrong_median = statistics.median(samples["wrong"])
    gap = abs(unknown_median - wrong_median)
    allowed = max(RELATIVE * max(unknown_median, wrong_median), ABSOLUTE)
    figures = (
        f"median unknown user {unknown_median * 1000:.1f} ms, wrong password "
        f"{wrong_median * 1000:.1f} ms, gap {gap * 1000:.1f} ms (allowed {allowed * 1000:.1f})"
    )
    print(figures)
    # The Argon2 work really is costly (else the comparison proves little).
    assert wrong_median > 0.03, figures
    assert gap < allowed, figures
