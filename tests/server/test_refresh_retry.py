"""A refresh whose answer was lost is retried: the retry window, and reuse detection past it.

A crash, a proxy or a mobile network can lose the answer of a refresh the server
committed. The client then presents the same refresh token again: inside the
retry window (``refresh_reuse_grace``, 60 s by default), while the successor is
unused, it gets that same successor back and the session lives. Once the window
has passed, or once the successor has been used, the same request is a replay and
ends the session (RFC 9700 §4.14.2). Time is moved with the server's FakeClock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from authmesh.testing import FakeClock
from support.harness import Api, claims_of

BAD_REFRESH = {
    "error": "invalid_grant",
    "error_description": "the refresh token is invalid, expired or revoked",
}


def _lost_answer(api: Api) -> tuple[dict[str, Any], str]:
    """A login, and the successor of its refresh token, whose answer the client 'lost'."""
    login = api.login()
    first = api.refresh(login["refresh_token"])
    assert first.status_code == 200, first.text
    return login, str(first.json()["refresh_token"])


@pytest.mark.parametrize("after", [10, 50])
def test_a_retry_inside_the_window_gets_the_same_successor(
    start_server: Callable[..., Api], after: int
) -> None:
    clock = FakeClock()
    api = start_server(clock=clock)  # the default window: 60 s
    login, successor = _lost_answer(api)
    before = api.latest_cursor()

    clock.advance(after)
    retry = api.refresh(login["refresh_token"])

    assert retry.status_code == 200, retry.text
    body = retry.json()
    assert body["refresh_token"] == successor
    assert claims_of(body["access_token"])["sid"] == claims_of(login["access_token"])["sid"]
    assert api.userinfo(body["access_token"]).status_code == 200
    # The session lives: no revocation, and the successor rotates as usual.
    assert api.events(before) == []
    follow = api.refresh(successor)
    assert follow.status_code == 200, follow.text
    assert follow.json()["refresh_token"] not in (successor, login["refresh_token"])


def test_a_retry_after_the_window_is_a_replay(start_server: Callable[..., Api]) -> None:
    clock = FakeClock()
    api = start_server(clock=clock)
    login, successor = _lost_answer(api)
    sid = claims_of(login["access_token"])["sid"]
    before = api.latest_cursor()

    clock.advance(61)
    replay = api.refresh(login["refresh_token"])

    assert (replay.status_code, replay.json()) == (400, BAD_REFRESH)
    assert api.events(before) == [("sid", sid)]
    assert api.refresh(successor).json() == BAD_REFRESH
    assert api.userinfo(login["access_token"]).status_code == 401


def test_a_retry_after_the_successor_was_used_is_a_replay(
    start_server: Callable[..., Api],
) -> None:
    clock = FakeClock()
    api = start_server(clock=clock)
    login, successor = _lost_answer(api)
    sid = claims_of(login["access_token"])["sid"]
    clock.advance(5)
    newest = api.refresh(successor)  # the client did get the successor, and used it
    assert newest.status_code == 200
    before = api.latest_cursor()

    clock.advance(5)  # well inside the window
    replay = api.refresh(login["refresh_token"])

    assert (replay.status_code, replay.json()) == (400, BAD_REFRESH)
    assert api.events(before) == [("sid", sid)]
    assert api.refresh(newest.json()["refresh_token"]).json() == BAD_REFRESH


def test_the_window_is_configurable(start_server: Callable[..., Api]) -> None:
    clock = FakeClock()
    api = start_server(clock=clock, refresh_reuse_grace=20)
    login, successor = _lost_answer(api)

    clock.advance(19)
    assert api.refresh(login["refresh_token"]).json()["refresh_token"] == successor
    clock.advance(2)  # 21 s after the first use
    assert api.refresh(login["refresh_token"]).json() == BAD_REFRESH


def test_every_retry_of_a_token_answers_the_same_successor(
    start_server: Callable[..., Api],
) -> None:
    clock = FakeClock()
    api = start_server(clock=clock)
    login, successor = _lost_answer(api)

    answers = []
    for _ in range(4):
        clock.advance(10)
        response = api.refresh(login["refresh_token"])
        assert response.status_code == 200, response.text
        answers.append(response.json()["refresh_token"])

    assert answers == [successor] * 4
    assert api.refresh(successor).status_code == 200


async def test_concurrent_replays_end_the_session_once(start_server: Callable[..., Api]) -> None:
    """Replays of two used tokens of one session, 24 at once: one sid event, one audit row."""
    clock = FakeClock()
    api = start_server(clock=clock)
    login = api.login()
    sid = claims_of(login["access_token"])["sid"]
    second = api.refresh(login["refresh_token"]).json()
    third = api.refresh(second["refresh_token"]).json()
    clock.advance(120)  # both used tokens are past the window
    before = api.latest_cursor()
    stale = [login["refresh_token"], second["refresh_token"]] * 12

    limits = httpx.Limits(max_connections=len(stale), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=api.url, timeout=30, limits=limits) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/oauth/token",
                    data={"grant_type": "refresh_token", "refresh_token": t, "client_id": "web"},
                )
                for t in stale
            )
        )

    assert [r.status_code for r in responses] == [400] * len(stale)
    assert all(r.json() == BAD_REFRESH for r in responses)
    assert api.events(before) == [("sid", sid)]
    audit = api.admin("GET", "/admin/audit", params={"action": "refresh_reuse"})
    assert audit.status_code == 200
    assert len(audit.json()["events"]) == 1
    assert api.refresh(third["refresh_token"]).json() == BAD_REFRESH
