"""The auth server is SIGKILLed while ten users refresh: after a restart every one retries
its last refresh, and no session is ended for it.

``authmesh serve`` runs as a process on PostgreSQL. Ten clients refresh in a loop,
each presenting the token its previous answer gave; the process is killed with
SIGKILL in the middle of that. A client whose request got no answer cannot tell
whether the server committed the rotation, so after the restart it presents the
same token again. Whether or not the rotation had committed, it gets the one
successor the server derives for that token, and its session goes on. Each
session's refresh tokens still form one chain: no token was rotated twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from authmesh.server.secrets import hash_secret, successor_token
from authmesh.store.models import RefreshTokenRow, SessionRow
from authmesh.testing import free_port
from authmesh.testing.authserver import AuthServerProcess, seed_demo, settings_for
from support.acceptance import OfflineCore, RemoteServer, process_env
from support.databases import db_target
from support.harness import Api, claims_of

USERS = 10
#: Refreshes every client has had answered before the kill.
WARM_UP = 3


@dataclass
class Crash:
    """The server process, its database (offline) and an API client of it."""

    process: AuthServerProcess
    offline: OfflineCore
    api: Api


@dataclass
class Client:
    """One user's refresh loop: the token it presents next, and what happened to it."""

    token: str
    answered: int = 0
    #: The request in flight when the server died (sent, never answered).
    lost_answer: bool = False
    history: list[str] = field(default_factory=list)


@pytest.fixture
def crash(tmp_path: Path) -> Iterator[Crash]:
    with db_target("postgres", tmp_path) as target, contextlib.ExitStack() as stack:
        port = free_port()
        offline = OfflineCore(settings_for(target, port=port))
        stack.callback(offline.close)
        secret = seed_demo(offline)["service_secret"]  # type: ignore[arg-type]
        process = AuthServerProcess(process_env(target), port)
        stack.callback(process.stop)
        process.start()
        api = Api(RemoteServer(process.url, offline), secret)  # type: ignore[arg-type]
        stack.callback(api.close)
        yield Crash(process, offline, api)


async def _refresh(http: httpx.AsyncClient, token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": "web"}
    return await http.post("/oauth/token", data=form)


async def _churn_until_killed(crash: Crash, clients: list[Client]) -> None:
    """Every client refreshes in a loop; the process is SIGKILLed once all are warm."""
    limits = httpx.Limits(max_connections=USERS, max_keepalive_connections=USERS)
    async with httpx.AsyncClient(base_url=crash.api.url, timeout=15, limits=limits) as http:

        async def loop(client: Client) -> None:
            while True:
                try:
                    response = await _refresh(http, client.token)
                except httpx.ConnectError:
                    return  # the server was already gone: the token was never sent
                except httpx.TransportError:
                    client.lost_answer = True
                    return
                assert response.status_code == 200, response.text
                client.history.append(client.token)
                client.token = response.json()["refresh_token"]
                client.answered += 1

        async def kill_when_warm() -> None:
            while min(c.answered for c in clients) < WARM_UP:
                await asyncio.sleep(0.005)
            crash.process.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]

        await asyncio.gather(kill_when_warm(), *(loop(c) for c in clients))


def _unused_tokens_per_session(crash: Crash, sids: list[str]) -> list[int]:
    async def count() -> list[int]:
        async with crash.offline.core.db.transaction() as session:
            counts = []
            for sid in sids:
                stmt = (
                    select(func.count())
                    .select_from(RefreshTokenRow)
                    .where(RefreshTokenRow.session_id == sid, RefreshTokenRow.used_at.is_(None))
                )
                counts.append(int((await session.execute(stmt)).scalar_one()))
            return counts

    return crash.offline.call(count())


def _committed(crash: Crash, tokens: list[str]) -> list[bool]:
    """Whether the server had committed the rotation of each token before it died."""

    async def read() -> list[bool]:
        async with crash.offline.core.db.transaction() as session:
            stmt = select(RefreshTokenRow.token_hash, RefreshTokenRow.used_at).where(
                RefreshTokenRow.token_hash.in_([hash_secret(t) for t in tokens])
            )
            used = {h: at is not None for h, at in (await session.execute(stmt)).all()}
        return [used[hash_secret(t)] for t in tokens]

    return crash.offline.call(read())


def _ended_sessions(crash: Crash, sids: list[str]) -> int:
    async def count() -> int:
        async with crash.offline.core.db.transaction() as session:
            stmt = (
                select(func.count())
                .select_from(SessionRow)
                .where(SessionRow.id.in_(sids), SessionRow.ended_at.is_not(None))
            )
            return int((await session.execute(stmt)).scalar_one())

    return crash.offline.call(count())


@pytest.mark.postgres
def test_sigkill_mid_refresh_ends_no_session(crash: Crash) -> None:
    api = crash.api
    logins = [api.login(*api.new_user()) for _ in range(USERS)]
    sids = [claims_of(login["access_token"])["sid"] for login in logins]
    clients = [Client(login["refresh_token"]) for login in logins]

    asyncio.run(_churn_until_killed(crash, clients))
    assert crash.process.proc is not None and crash.process.proc.wait(10) == -signal.SIGKILL
    crash.process.stop()  # reap it and close its pipe
    in_flight = [c.token for c in clients]
    committed = _committed(crash, in_flight)
    started = time.monotonic()
    crash.process.start()
    restart = time.monotonic() - started

    # Each client retries its last refresh with the same token.
    retries = [api.refresh(token) for token in in_flight]
    assert [r.status_code for r in retries] == [200] * USERS, [r.text for r in retries]
    pepper = crash.offline.core.pepper
    for token, retry in zip(in_flight, retries, strict=True):
        # The one successor of that token, whether or not its rotation had committed.
        assert retry.json()["refresh_token"] == successor_token(pepper, token)
    # Every session goes on: the new tokens work and rotate again.
    for sid, retry in zip(sids, retries, strict=True):
        body = retry.json()
        assert claims_of(body["access_token"])["sid"] == sid
        assert api.userinfo(body["access_token"]).status_code == 200
        follow = api.refresh(body["refresh_token"])
        assert follow.status_code == 200, follow.text
    assert _ended_sessions(crash, sids) == 0
    # One chain per session: exactly one unused refresh token each, none rotated twice.
    assert _unused_tokens_per_session(crash, sids) == [1] * USERS
    print(
        f"\nSIGKILL mid-refresh: {sum(c.answered for c in clients)} refreshes answered, "
        f"{sum(c.lost_answer for c in clients)} of {USERS} in flight "
        f"({sum(committed)} of them committed), restart {restart:.2f} s, "
        f"{USERS - _ended_sessions(crash, sids)} of {USERS} sessions kept"
    )

    # A token whose successor was used is a replay, not a retry: the session ends.
    replay = api.refresh(clients[0].history[-1])
    assert replay.status_code == 400
    assert _ended_sessions(crash, sids) == 1
