"""Refresh-token rotation, reuse detection and the grace window, under real concurrency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from authmesh.store.models import RefreshTokenRow
from authmesh.testing import FakeClock
from support.harness import Api, claims_of

BAD_REFRESH = {
    "error": "invalid_grant",
    "error_description": "the refresh token is invalid, expired or revoked",
}


async def _refresh_all(api: Api, tokens: list[str]) -> list[httpx.Response]:
    """Send one refresh per token, all at once, over separate connections."""
    limits = httpx.Limits(max_connections=len(tokens), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=api.url, timeout=20, limits=limits) as client:

        async def one(token: str) -> httpx.Response:
            return await client.post(
                "/oauth/token",
                data={"grant_type": "refresh_token", "refresh_token": token, "client_id": "web"},
            )

        return list(await asyncio.gather(*(one(t) for t in tokens)))


def _refresh_rows(api: Api) -> tuple[int, int]:
    """How many refresh tokens are stored, and how many of them are used."""

    async def count() -> tuple[int, int]:
        async with api.core.db.transaction() as session:
            total = await session.execute(select(func.count()).select_from(RefreshTokenRow))
            used = await session.execute(
                select(func.count())
                .select_from(RefreshTokenRow)
                .where(RefreshTokenRow.used_at.is_not(None))
            )
            return int(total.scalar_one()), int(used.scalar_one())

    return api.server.call(count())


def test_each_refresh_rotates_and_the_old_token_dies(start_server: Callable[..., Api]) -> None:
    api = start_server(refresh_reuse_grace=0)
    current = api.login()["refresh_token"]
    seen = {current}

    for _ in range(3):
        response = api.refresh(current)
        assert response.status_code == 200, response.text
        current = response.json()["refresh_token"]
        assert current not in seen
        seen.add(current)

    assert _refresh_rows(api) == (4, 3)
    assert api.refresh(current).status_code == 200


def test_reuse_after_the_grace_window_revokes_the_whole_session(
    start_server: Callable[..., Api],
) -> None:
    api = start_server(refresh_reuse_grace=0)
    login = api.login()
    sid = claims_of(login["access_token"])["sid"]
    rotated = api.refresh(login["refresh_token"]).json()
    newest = api.refresh(rotated["refresh_token"]).json()
    before = api.latest_cursor()
    time.sleep(0.05)

    replay = api.refresh(login["refresh_token"])

    assert replay.status_code == 400
    assert replay.json() == BAD_REFRESH
    # The thief's copy and the owner's newest token are both dead now.
    assert api.refresh(newest["refresh_token"]).json() == BAD_REFRESH
    assert api.events(before) == [("sid", sid)]
    for token in (login, rotated, newest):
        assert api.introspect(token["access_token"]) == {"active": False}
        assert api.userinfo(token["access_token"]).status_code == 401
    # Another session of the same user is untouched.
    other = api.login()
    assert api.refresh(other["refresh_token"]).status_code == 200


def test_reuse_is_audited(start_server: Callable[..., Api]) -> None:
    api = start_server(refresh_reuse_grace=0)
    login = api.login()
    api.refresh(login["refresh_token"])
    time.sleep(0.05)
    api.refresh(login["refresh_token"])

    response = api.admin("GET", "/admin/audit", params={"action": "refresh_reuse"})

    assert response.status_code == 200
    events = response.json()["events"]
    assert len(events) == 1
    assert events[0]["outcome"] == "revoked"
    assert events[0]["subject"] == "alice"
    assert events[0]["details"]["session_id"] == claims_of(login["access_token"])["sid"]


@pytest.mark.parametrize("parallel", [2, 5])
async def test_concurrent_refreshes_inside_the_grace_window_all_succeed(
    start_server: Callable[..., Api], parallel: int
) -> None:
    api = start_server(refresh_reuse_grace=10)
    login = api.login()

    responses = await _refresh_all(api, [login["refresh_token"]] * parallel)

    assert [r.status_code for r in responses] == [200] * parallel, [r.text for r in responses]
    successors = {r.json()["refresh_token"] for r in responses}
    assert len(successors) == 1
    (successor,) = successors
    assert successor != login["refresh_token"]
    sids = {claims_of(r.json()["access_token"])["sid"] for r in responses}
    assert sids == {claims_of(login["access_token"])["sid"]}
    # Exactly one rotation happened, and the session lives on.
    assert _refresh_rows(api) == (2, 1)
    assert api.events() == []
    follow = api.refresh(successor)
    assert follow.status_code == 200, follow.text


async def test_sequential_duplicate_inside_the_grace_window_gets_the_same_token(
    start_server: Callable[..., Api],
) -> None:
    api = start_server(refresh_reuse_grace=10)
    login = api.login()

    first = api.refresh(login["refresh_token"])
    second = api.refresh(login["refresh_token"])

    assert first.status_code == second.status_code == 200
    assert first.json()["refresh_token"] == second.json()["refresh_token"]


async def test_concurrent_refreshes_without_grace_detect_reuse(
    start_server: Callable[..., Api],
) -> None:
    api = start_server(refresh_reuse_grace=0)
    login = api.login()
    sid = claims_of(login["access_token"])["sid"]
    first = api.refresh(login["refresh_token"])
    assert first.status_code == 200
    await asyncio.sleep(0.05)

    responses = await _refresh_all(api, [login["refresh_token"]] * 3)

    assert [r.status_code for r in responses] == [400] * 3
    assert all(r.json() == BAD_REFRESH for r in responses)
    assert api.refresh(first.json()["refresh_token"]).json() == BAD_REFRESH
    assert ("sid", sid) in api.events()


async def test_parallel_refreshes_of_distinct_sessions_lose_nothing(
    start_server: Callable[..., Api],
) -> None:
    api = start_server(refresh_reuse_grace=0)
    sessions = 8
    logins = [api.login() for _ in range(sessions)]
    tokens = [login["refresh_token"] for login in logins]

    responses = await _refresh_all(api, tokens)

    assert [r.status_code for r in responses] == [200] * sessions, [r.text for r in responses]
    bodies: list[dict[str, Any]] = [r.json() for r in responses]
    successors = [b["refresh_token"] for b in bodies]
    assert len(set(successors)) == sessions
    assert not set(successors) & set(tokens)
    # Each answer belongs to the session that asked.
    for login, body in zip(logins, bodies, strict=True):
        assert claims_of(body["access_token"])["sid"] == claims_of(login["access_token"])["sid"]
    assert _refresh_rows(api) == (2 * sessions, sessions)
    # Every rotation took: each successor works once more, in parallel again.
    again = await _refresh_all(api, successors)
    assert [r.status_code for r in again] == [200] * sessions
    assert _refresh_rows(api) == (3 * sessions, 2 * sessions)
    assert api.events() == []


def test_new_access_token_after_refresh_carries_current_roles(api: Api) -> None:
    login = api.login()
    assert claims_of(login["access_token"])["roles"] == ["user"]

    granted = api.admin("PUT", "/admin/users/alice/roles", json={"roles": ["user", "auditor"]})
    assert granted.status_code == 200
    assert granted.json()["roles"] == ["auditor", "user"]
    first = api.refresh(login["refresh_token"]).json()
    assert claims_of(first["access_token"])["roles"] == ["auditor", "user"]

    taken = api.admin("PUT", "/admin/users/alice/roles", json={"roles": ["user"]})
    assert taken.status_code == 200
    # Taking a role away revokes the tokens that still carry it...
    assert api.userinfo(first["access_token"]).status_code == 401
    # ...but not the session: the next refresh carries the reduced roles. (Tokens
    # minted in the second of the change are covered too: wait for the next one.)
    time.sleep(1.02 - time.time() % 1)
    second = api.refresh(first["refresh_token"])
    assert second.status_code == 200, second.text
    token = second.json()["access_token"]
    assert claims_of(token)["roles"] == ["user"]
    assert api.userinfo(token).json()["roles"] == ["user"]


def test_refresh_tokens_expire_when_idle(start_server: Callable[..., Api]) -> None:
    clock = FakeClock()
    api = start_server(clock=clock, refresh_idle_ttl=60, refresh_absolute_ttl=120)
    login = api.login()

    clock.now += 59
    kept = api.refresh(login["refresh_token"])
    assert kept.status_code == 200
    clock.now += 61

    assert api.refresh(kept.json()["refresh_token"]).json() == BAD_REFRESH


def test_sessions_end_at_their_absolute_lifetime(start_server: Callable[..., Api]) -> None:
    clock = FakeClock()
    api = start_server(clock=clock, refresh_idle_ttl=60, refresh_absolute_ttl=120)
    token = api.login()["refresh_token"]

    for _ in range(2):  # each refresh within the idle window keeps the session going...
        clock.now += 50
        response = api.refresh(token)
        assert response.status_code == 200
        token = response.json()["refresh_token"]
    clock.now += 21  # ...but never past 120 s after the login

    assert api.refresh(token).json() == BAD_REFRESH


def test_access_tokens_expire_after_their_lifetime_and_leeway(
    start_server: Callable[..., Api],
) -> None:
    clock = FakeClock()
    api = start_server(clock=clock, access_token_ttl=60, leeway=5)
    token = api.login()["access_token"]
    assert claims_of(token)["exp"] - claims_of(token)["iat"] == 60

    clock.now += 64
    assert api.userinfo(token).status_code == 200
    clock.now += 2
    expired = api.userinfo(token)

    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == (
        'Bearer realm="authmesh", error="invalid_token", error_description="the token has expired"'
    )
    assert api.introspect(token) == {"active": False}


async def test_replicas_share_the_grace_window(start_server: Callable[..., Api]) -> None:
    first = start_server(refresh_reuse_grace=10)
    second = start_server(seed=False, refresh_reuse_grace=10)
    token = first.login()["refresh_token"]

    async with httpx.AsyncClient(timeout=20) as client:
        form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": "web"}
        responses = await asyncio.gather(
            client.post(f"{first.url}/oauth/token", data=form),
            client.post(f"{second.url}/oauth/token", data=form),
        )

    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    # Both replicas derive the same successor (the pepper is shared through the database).
    assert responses[0].json()["refresh_token"] == responses[1].json()["refresh_token"]
    assert _refresh_rows(first) == (2, 1)
