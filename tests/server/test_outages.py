"""PostgreSQL failing under a running auth server: refused, silent, slow; then back.

The server reaches PostgreSQL through :class:`~authmesh.testing.TcpProxy`, with
short database timeouts so that each test takes seconds. Every answer during an
outage must be 200 or 503 with ``Retry-After`` (never 500), within a bound; the
server must serve again soon after the database is back, without a restart; and
nothing committed before the outage may be lost.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from authmesh.server.secrets import hash_secret, successor_token
from authmesh.testing import TcpProxy, wait_for
from authmesh.testing.databases import PG_URL, DbTarget
from support.databases import db_target
from support.harness import ALICE, Api, launch
from support.oidc_flow import Browser, register_browser_clients

#: Short bounds, so an outage costs each request about a second, not the defaults' 3-5 s.
FAST_TIMEOUTS = {
    "database_connect_timeout": 1.0,
    "database_pool_timeout": 1.0,
    "database_statement_timeout": 2.0,
}
#: Generous: the machine is shared. The figures measured go in the report, not here.
ANSWER_BOUND = 10.0
RECOVERY_BOUND = 10.0
KINDS = ("client_credentials", "password", "refresh")


@dataclass(frozen=True, slots=True)
class Answer:
    """One token request of the load: what it asked, what came back, how long it took."""

    kind: str
    sent: float
    seconds: float
    status: int
    retry_after: str | None
    error: str | None


@dataclass
class Outage:
    """A seeded server whose database connections all go through ``proxy``."""

    api: Api
    proxy: TcpProxy
    schema: str


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[Outage]:
    pg = make_url(PG_URL)
    assert pg.host and pg.port
    with db_target("postgres", tmp_path) as real, TcpProxy(pg.host, pg.port) as proxy:
        assert real.schema
        proxied = pg.set(port=proxy.port).render_as_string(hide_password=False)
        api = launch(DbTarget("postgres", proxied, real.schema, real.data_dir), **FAST_TIMEOUTS)
        try:
            yield Outage(api, proxy, real.schema)
        finally:
            proxy.restore()
            api.close()
            api.server.stop()


def _form(api: Api, kind: str, user: tuple[str, str], refresh: str | None) -> dict[str, str]:
    if kind == "client_credentials":
        return {"grant_type": "client_credentials"}
    if kind == "refresh" and refresh:
        return {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": "web"}
    return {"grant_type": "password", "username": user[0], "password": user[1], "client_id": "web"}


@dataclass
class Load:
    """Threads sending token requests of every kind until stopped, each on its own user.

    A refresh worker that gets a 503 signs in again instead of retrying its
    refresh token: whether a retried refresh is honoured is not this test's
    question, and it must not turn into a 400 here.
    """

    api: Api
    per_kind: int = 2
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Load:
        for kind in KINDS:
            for _ in range(self.per_kind):
                user = self.api.new_user()
                thread = threading.Thread(target=self._work, args=(kind, user), daemon=True)
                self._threads.append(thread)
                thread.start()
        return self

    def stop(self) -> list[Answer]:
        self._stop.set()
        for thread in self._threads:
            thread.join(ANSWER_BOUND + 5)
        return list(self.answers)

    def _work(self, kind: str, user: tuple[str, str]) -> None:
        refresh: str | None = None
        headers = {"Authorization": self.api.service_basic} if kind == "client_credentials" else {}
        with httpx.Client(base_url=self.api.url, timeout=ANSWER_BOUND + 20) as http:
            while not self._stop.is_set():
                sent = time.monotonic()
                response = http.post(
                    "/oauth/token", data=_form(self.api, kind, user, refresh), headers=headers
                )
                seconds = time.monotonic() - sent
                body = response.json()
                if response.status_code == 200:
                    refresh = body.get("refresh_token", refresh)
                else:
                    refresh = None
                with self._lock:
                    self.answers.append(
                        Answer(
                            kind,
                            sent,
                            seconds,
                            response.status_code,
                            response.headers.get("retry-after"),
                            body.get("error"),
                        )
                    )
                # Paces the loop: a refused database answers in milliseconds.
                self._stop.wait(0.02)

    def count(self, since: float, status: int | None = None, kind: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for a in self.answers
                if a.sent >= since
                and (status is None or a.status == status)
                and (kind is None or a.kind == kind)
            )


def _assert_failed_well(answers: list[Answer]) -> None:
    statuses = {a.status for a in answers}
    assert statuses <= {200, 503}, sorted(statuses)
    for a in answers:
        if a.status == 503:
            assert a.retry_after is not None and int(a.retry_after) >= 1, a
            assert a.error == "temporarily_unavailable", a
    slowest = max(answers, key=lambda a: a.seconds)
    assert slowest.seconds < ANSWER_BOUND, slowest


def _recovered_after(load: Load, restored: float) -> float:
    """Seconds from ``restored`` until every kind of request succeeded again."""

    def every_kind_succeeded() -> bool:
        return all(load.count(restored, 200, kind) > 0 for kind in KINDS)

    wait_for(every_kind_succeeded, RECOVERY_BOUND, message="every grant succeeds again")
    with load._lock:
        return max(
            min(a.sent + a.seconds for a in load.answers if a.sent >= restored and a.kind == k)
            - restored
            for k in KINDS
        )


def _figures(label: str, answers: list[Answer], recovery: float) -> str:
    failed = [a.seconds for a in answers if a.status == 503]
    return (
        f"{label}: {len(answers)} answers, {len(failed)} x 503, 503 answer time "
        f"median {statistics.median(failed):.3f} s max {max(failed):.3f} s; "
        f"recovered {recovery:.2f} s after restore"
    )


@dataclass(frozen=True, slots=True)
class Committed:
    """What was committed before the outage: a new user, and a session refreshed once."""

    user: tuple[str, str]
    refresh_token: str


def _commit_before(api: Api) -> Committed:
    created = api.admin(
        "POST", "/admin/users", json={"username": "made-before", "password": "made-before-pw-1"}
    )
    assert created.status_code == 201, created.text
    first = api.login()["refresh_token"]
    refreshed = api.refresh(first)
    assert refreshed.status_code == 200, refreshed.text
    return Committed(("made-before", "made-before-pw-1"), refreshed.json()["refresh_token"])


def _assert_kept(api: Api, committed: Committed) -> None:
    assert api.password_grant(*committed.user).status_code == 200
    again = api.refresh(committed.refresh_token)
    assert again.status_code == 200, again.text


#: How many 503s the load must meet before the database comes back: a refused
#: connection fails in milliseconds, a silent one only after the timeouts.
_FAILURES_WANTED = {"kill": 60, "freeze": 12}


@pytest.mark.postgres
@pytest.mark.parametrize("fault", ["kill", "freeze"])
def test_database_fault_under_load_answers_503_then_recovers(outage: Outage, fault: str) -> None:
    api, proxy = outage.api, outage.proxy
    committed = _commit_before(api)
    load = Load(api).start()
    wanted = _FAILURES_WANTED[fault]
    try:
        began = time.monotonic()
        wait_for(lambda: all(load.count(began, 200, k) >= 2 for k in KINDS), RECOVERY_BOUND)

        getattr(proxy, fault)()
        failed = time.monotonic()
        wait_for(lambda: load.count(failed, 503) >= wanted, 3 * ANSWER_BOUND, message="503 answers")
        proxy.restore()
        restored = time.monotonic()
        recovery = _recovered_after(load, restored)
    finally:
        answers = load.stop()

    _assert_failed_well(answers)
    in_flight = [a for a in answers if a.sent < failed < a.sent + a.seconds]
    during = [a for a in answers if failed <= a.sent < restored] + in_flight
    assert any(a.status == 503 for a in during)
    print(_figures(fault, during, recovery) + f"; {len(in_flight)} in flight at the fault")
    _assert_kept(api, committed)


@pytest.mark.postgres
def test_frozen_database_answers_503_within_the_bound(outage: Outage) -> None:
    api, proxy = outage.api, outage.proxy
    committed = _commit_before(api)
    users = [api.new_user() for _ in range(3)]
    refresh_tokens = [api.login(*user)["refresh_token"] for user in users]

    def token(kind: str, index: int) -> Answer:
        user = users[index]
        form = _form(api, kind, user, refresh_tokens[index] if kind == "refresh" else None)
        headers = {"Authorization": api.service_basic} if kind == "client_credentials" else {}
        sent = time.monotonic()
        response = httpx.post(
            f"{api.url}/oauth/token", data=form, headers=headers, timeout=ANSWER_BOUND + 20
        )
        return Answer(
            kind,
            sent,
            time.monotonic() - sent,
            response.status_code,
            response.headers.get("retry-after"),
            response.json().get("error"),
        )

    def ready() -> tuple[int, str | None, float]:
        sent = time.monotonic()
        response = httpx.get(f"{api.url}/readyz", timeout=ANSWER_BOUND + 20)
        return response.status_code, response.headers.get("retry-after"), time.monotonic() - sent

    proxy.freeze()
    with ThreadPoolExecutor(max_workers=10) as pool:
        tokens = [pool.submit(token, kind, i) for kind in KINDS for i in range(3)]
        readiness = pool.submit(ready)
        answers = [f.result() for f in tokens]
        ready_status, ready_retry, ready_seconds = readiness.result()
    health = httpx.get(f"{api.url}/healthz", timeout=5)
    proxy.restore()
    restored = time.monotonic()
    wait_for(lambda: httpx.get(f"{api.url}/readyz", timeout=ANSWER_BOUND).status_code == 200)
    wait_for(
        lambda: (
            api.token(
                {"grant_type": "client_credentials"}, headers={"Authorization": api.service_basic}
            ).status_code
            == 200
        ),
        RECOVERY_BOUND,
    )
    recovery = time.monotonic() - restored

    assert {a.status for a in answers} == {503}
    _assert_failed_well(answers)
    assert (ready_status, ready_retry) == (503, "5")
    assert ready_seconds < ANSWER_BOUND
    assert health.status_code == 200
    assert health.json()["database"] == "down"
    print(_figures("freeze", answers, recovery) + f"; /readyz answered in {ready_seconds:.2f} s")
    _assert_kept(api, committed)
    for refresh_token in refresh_tokens:  # the refreshes refused during the outage
        assert api.refresh(refresh_token).status_code == 200


@contextmanager
def _captured_logs() -> Iterator[list[str]]:
    """Every log line of this process, formatted with tracebacks, at DEBUG and up.

    uvicorn's loggers do not propagate to the root, so they get the handler too.
    """
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    loggers = [
        logging.getLogger(),
        logging.getLogger("uvicorn"),
        logging.getLogger("uvicorn.error"),
    ]
    root_level = loggers[0].level
    loggers[0].setLevel(logging.DEBUG)
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield lines
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        loggers[0].setLevel(root_level)


def _lock_refresh_tokens(schema: str, locked: threading.Event, release: threading.Event) -> None:
    """Hold an exclusive lock on the refresh-token table until ``release`` is set."""

    async def hold() -> None:
        conn = await asyncpg.connect(
            PG_URL.replace("postgresql+asyncpg://", "postgresql://"),
            server_settings={"search_path": schema},
            timeout=5,
        )
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE refresh_tokens IN ACCESS EXCLUSIVE MODE")
                locked.set()
                await asyncio.to_thread(release.wait, ANSWER_BOUND)
        finally:
            await conn.close()

    asyncio.run(hold())


@pytest.mark.postgres
def test_outage_logs_name_the_error_without_sql_or_secrets(outage: Outage) -> None:
    api, proxy = outage.api, outage.proxy
    refresh_token = api.login()["refresh_token"]
    successor = successor_token(api.core.pepper, refresh_token)
    secrets = {
        "refresh token": refresh_token,
        "refresh token hash": hash_secret(refresh_token),
        "successor": successor,
        "successor hash": hash_secret(successor),
        "password": ALICE[1],
    }
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(
        target=_lock_refresh_tokens, args=(outage.schema, locked, release), daemon=True
    )

    with _captured_logs() as lines:
        # A slow database: the token table is locked, so the refresh's statement,
        # whose parameters are the token hashes, runs into statement_timeout.
        holder.start()
        assert locked.wait(ANSWER_BOUND)
        slow = api.refresh(refresh_token)
        release.set()
        holder.join(ANSWER_BOUND)
        # A database that refuses connections, then one behind a silent network.
        proxy.kill()
        refused = api.refresh(refresh_token)
        proxy.restore()
        proxy.freeze()
        silent = api.refresh(refresh_token)
        proxy.restore()
        recovered = api.refresh(refresh_token)

    for response in (slow, refused, silent):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert response.json()["error"] == "temporarily_unavailable"
        for name, secret in secrets.items():
            assert secret not in response.text, name
    assert recovered.status_code == 200, recovered.text  # the failed tries used nothing up
    text = "\n".join(lines)
    reports = [line for line in lines if "database unavailable" in line]
    assert any("QueryCanceledError" in line for line in reports), reports
    assert any("ConnectionRefusedError" in line for line in reports), reports
    assert any("TimeoutError" in line for line in reports), reports
    assert "Traceback" not in text
    for marker in ("[SQL", "[parameters", "SELECT ", "refresh_tokens."):
        assert marker not in text, marker
    for name, secret in secrets.items():
        assert secret not in text, name


@pytest.mark.postgres
def test_every_kind_of_endpoint_answers_503_during_an_outage(outage: Outage) -> None:
    api, proxy = outage.api, outage.proxy
    register_browser_clients(api)
    browser = Browser(api)
    admin = api.bearer(api.admin_token())
    user_token = api.login()["access_token"]
    service = {"Authorization": api.service_basic}
    proxy.kill()
    try:
        page = browser.authorize()
        answers = {
            "token": api.token({"grant_type": "client_credentials"}, headers=service),
            "revoke": api.http.post("/oauth/revoke", data={"token": "x"}, headers=service),
            "introspect": api.http.post("/oauth/introspect", data={"token": "x"}, headers=service),
            "admin": api.http.get("/admin/users", headers=admin),
            "userinfo": api.userinfo(user_token),
            "account": api.http.get("/account/consents", headers=api.bearer(user_token)),
            "feed page": api.http.get("/revocations", headers=service),
            "feed stream": api.http.get("/revocations/stream", headers=service),
        }
        health = api.http.get("/healthz")
    finally:
        proxy.restore()
        browser.close()

    assert page.status_code == 503
    assert page.headers["retry-after"] == "5"
    assert page.headers["content-type"].startswith("text/html")
    assert "Temporarily unavailable" in page.text
    for name, response in answers.items():
        assert response.status_code == 503, (name, response.text)
        assert response.headers["retry-after"] == "5", name
        assert response.json()["error"] == "temporarily_unavailable", name
        assert response.headers["x-content-type-options"] == "nosniff", name
    assert health.status_code == 200
    assert api.http.get("/admin/users", headers=admin).status_code == 200


def test_a_locked_sqlite_database_answers_503_after_the_busy_timeout(tmp_path: Path) -> None:
    with db_target("sqlite", tmp_path) as target:
        api = launch(target, database_statement_timeout=1.0)
        try:
            holder = sqlite3.connect(target.data_dir / "authmesh.db", isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            try:
                sent = time.monotonic()
                locked = api.password_grant()
                took = time.monotonic() - sent
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            after = api.password_grant()
        finally:
            api.close()
            api.server.stop()

    assert locked.status_code == 503, locked.text
    assert locked.headers["retry-after"] == "5"
    assert locked.json()["error"] == "temporarily_unavailable"
    assert 0.5 < took < ANSWER_BOUND
    assert after.status_code == 200
