"""Retention on a running server: what a prune may remove without changing any answer,
the background job in the server's lifespan, and one runner among replicas on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from authmesh.server.retention import RetentionJob, prune_now
from authmesh.store.models import AuditRow, RefreshTokenRow, RevocationRow, SessionRow
from authmesh.store.retention import PruneCounts
from authmesh.testing import FakeClock, wait_for
from authmesh.testing.databases import DbTarget
from support.harness import Api, claims_of

TTL, LEEWAY, IDLE = 60, 5, 600
#: Short lives, so a test moves its fake clock past them; no retries, so a reuse is one.
SETTINGS: dict[str, Any] = {
    "access_token_ttl": TTL,
    "leeway": LEEWAY,
    "refresh_idle_ttl": IDLE,
    "refresh_absolute_ttl": 4 * IDLE,
    "refresh_reuse_grace": 0,
    "retention_interval": 0,
}
BAD_REFRESH = "invalid_grant"


def _prune(api: Api) -> PruneCounts:
    return api.server.call(prune_now(api.core))


def _count(api: Api, model: Any, *where: Any) -> int:
    async def count() -> int:
        async with api.core.db.transaction() as session:
            stmt = select(func.count()).select_from(model).where(*where)
            return int((await session.execute(stmt)).scalar_one())

    return api.server.call(count())


def _session_open(api: Api, sid: str) -> bool:
    return _count(api, SessionRow, SessionRow.id == sid, SessionRow.ended_at.is_(None)) == 1


def _rotate(api: Api, token: str) -> str:
    response = api.refresh(token)
    assert response.status_code == 200, response.text
    return str(response.json()["refresh_token"])


def test_a_used_token_within_its_life_survives_a_prune_and_still_ends_its_session(
    start_server: Callable[..., Api],
) -> None:
    clock = FakeClock()
    api = start_server(clock=clock, **SETTINGS)
    login = api.login()
    sid = claims_of(login["access_token"])["sid"]
    stolen = login["refresh_token"]
    current = _rotate(api, stolen)
    clock.advance(IDLE - 1)  # the used token expires in a second

    assert _prune(api).refresh_tokens == 0

    replay = api.refresh(stolen)
    assert replay.status_code == 400
    assert replay.json()["error"] == BAD_REFRESH
    assert not _session_open(api, sid)
    assert api.refresh(current).status_code == 400
    assert ("sid", sid) in api.events()


def test_a_token_past_its_life_is_removed_and_then_only_unknown(
    start_server: Callable[..., Api],
) -> None:
    clock = FakeClock()
    api = start_server(clock=clock, **SETTINGS)
    login = api.login()
    sid = claims_of(login["access_token"])["sid"]
    old = login["refresh_token"]
    clock.advance(IDLE / 2)
    current = _rotate(api, old)
    clock.advance(IDLE / 2 + LEEWAY + 1)  # the old one expired (and the leeway passed)

    assert _prune(api).refresh_tokens == 1

    # Unknown now: refused as before, but no longer proof of a theft.
    replay = api.refresh(old)
    assert (replay.status_code, replay.json()["error"]) == (400, BAD_REFRESH)
    assert _session_open(api, sid)
    assert api.refresh(current).status_code == 200


def test_an_ended_session_goes_a_token_lifetime_later_with_its_tokens(
    start_server: Callable[..., Api],
) -> None:
    clock = FakeClock()
    api = start_server(clock=clock, **SETTINGS)
    login = api.login()
    sid = claims_of(login["access_token"])["sid"]
    _rotate(api, login["refresh_token"])
    assert api.revoke(login["refresh_token"]).status_code == 200  # ends the session
    assert api.userinfo(login["access_token"]).status_code == 401

    clock.advance(TTL + LEEWAY - 1)
    assert _prune(api).sessions == 0
    clock.advance(2)
    counts = _prune(api)

    assert (counts.sessions, counts.refresh_tokens) == (1, 2)
    assert _count(api, SessionRow, SessionRow.id == sid) == 0
    assert _count(api, RefreshTokenRow, RefreshTokenRow.session_id == sid) == 0
    # The same answers as before the prune.
    assert api.userinfo(login["access_token"]).status_code == 401
    assert api.introspect(login["access_token"]) == {"active": False}


def test_a_follower_reads_the_same_live_events_from_any_cursor_before_and_after_a_prune(
    start_server: Callable[..., Api],
) -> None:
    clock = FakeClock()
    api = start_server(clock=clock, **SETTINGS)
    for _ in range(3):  # events that will have expired …
        api.revoke(api.login()["refresh_token"])
    clock.advance(TTL + 3 * LEEWAY)
    for _ in range(2):  # … and live ones
        api.revoke(api.login()["refresh_token"])
    latest = api.latest_cursor()
    before = {c: api.revocations(after=c) for c in range(latest + 1)}

    counts = _prune(api)

    assert counts.revocation_events == 3
    after = {c: api.revocations(after=c) for c in range(latest + 1)}
    for cursor in before:
        # A follower whose cursor is older than the oldest event kept misses nothing:
        # only events no page served any more (expired) are gone.
        assert after[cursor]["events"] == before[cursor]["events"]
        assert after[cursor]["latest_cursor"] == latest
    assert len(after[0]["events"]) == 2


def test_audit_events_go_after_the_retention_period(start_server: Callable[..., Api]) -> None:
    clock = FakeClock()
    api = start_server(clock=clock, **{**SETTINGS, "audit_retention": 3600})
    api.login()
    recorded = _count(api, AuditRow)
    clock.advance(3000)
    api.login()

    assert _prune(api).audit_events == 0
    clock.advance(601)
    assert _prune(api).audit_events == recorded
    assert _count(api, AuditRow) == 1


def test_the_server_prunes_in_the_background(start_server: Callable[..., Api]) -> None:
    clock = FakeClock()
    api = start_server(clock=clock, **{**SETTINGS, "retention_interval": 0.02})
    job: RetentionJob = api.server.app.state.retention
    login = api.login()
    api.revoke(login["refresh_token"])
    clock.advance(IDLE + LEEWAY + 1)

    wait_for(lambda: job.removed.sessions == 1, timeout=10, message="the session pruned")
    assert job.removed.refresh_tokens == 1
    assert _count(api, SessionRow) == 0


def test_on_postgres_one_replica_runs_retention_and_another_takes_over(
    start_server: Callable[..., Api], db: DbTarget
) -> None:
    settings = {**SETTINGS, "retention_interval": 0.02}
    first = start_server(**settings)
    second = start_server(seed=False, **settings)
    jobs = [api.server.app.state.retention for api in (first, second)]

    wait_for(lambda: any(job.passes for job in jobs), timeout=10, message="a retention pass")
    if db.backend == "sqlite":
        # One machine, one writer at a time: every process simply runs it.
        wait_for(lambda: all(job.passes for job in jobs), timeout=10, message="both passes")
        return
    leader, other = jobs if jobs[0].passes else jobs[::-1]
    passes = leader.passes
    wait_for(lambda: leader.passes > passes + 3, timeout=10, message="more passes")
    assert other.passes == 0
    assert (leader.lock.held, other.lock.held) == (True, False)

    stopped = first if leader is jobs[0] else second
    stopped.server.stop()  # its lock goes with its connection

    wait_for(lambda: other.passes > 0, timeout=10, message="the other replica taking over")
    assert other.lock.held


def test_pruning_revocation_events_keeps_the_newest(start_server: Callable[..., Api]) -> None:
    clock = FakeClock()
    api = start_server(clock=clock, **SETTINGS)
    api.revoke(api.login()["refresh_token"])
    clock.advance(TTL + 3 * LEEWAY)

    _prune(api)

    assert _count(api, RevocationRow) == 1
