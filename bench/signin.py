"""Part ``signin``: browser sign-ins and SSO re-authorizations per server CPU-second.

Per backend (SQLite, PostgreSQL), a fresh database and one ``authmesh`` server
process per core on it, with the production settings (the default Argon2id,
OWASP's m=7 MiB, t=5, p=1; rate limiting off so that the load from one address
is not refused). A public first-party client ``spa`` with a loopback redirect
URI signs users in with the authorization code flow and PKCE S256, the way a
single-page app does. A closed-loop asyncio client in this process
(:mod:`bench.browser`, a cookie jar over one keep-alive connection) runs, in
alternating fixed-duration windows:

- ``signin``: the whole browser sign-in from an empty cookie jar: ``GET
  /authorize`` (the sign-in form and its CSRF cookie), ``POST /login`` with the
  password (one Argon2id verification, a browser session opened, a code
  issued, 303 to the client), then the code at ``POST /oauth/token``;
- ``sso``: a browser that holds a live single-sign-on cookie: ``GET
  /authorize`` answers 302 with a code at once (no password), then the
  exchange.

Every step is checked: the form page (200, CSRF cookie, hidden fields), the
303 or 302 to the registered URI with ``code``, the request's ``state`` and the
server's ``iss`` (RFC 9207), the session cookie, and an exchange answering 200
with an access token and an ``id_token``. A flow with any other answer counts
as failed. Each window's completed flows are divided by the CPU seconds the
server processes used in it (``/proc/PID/stat``). Anchor: Keycloak's sizing
guide plans 15 password logins per second per vCPU; the targets are 3× that
for a browser sign-in and 20× for an SSO re-authorization, which verifies no
password.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from authmesh.server.passwords import PasswordParams
from bench.browser import Browser, pkce_pair
from bench.harness import Spread
from bench.report import PartResult
from bench.servers import AuthServer, database, postgres_available, seed
from bench.token_endpoint import argon2_cost

__all__ = ["ANCHOR", "TARGETS", "run"]

_P = PasswordParams()  # the production defaults the servers run with

#: Keycloak's sizing guide: password logins per second per vCPU.
ANCHOR = 15.0
#: Flows per server CPU-second to reach.
TARGETS = {"signin": 45.0, "sso": 300.0}
FLOWS = ("signin", "sso")
REDIRECT_URI = "http://127.0.0.1:8765/callback"
_SCOPE = "openid profile orders:read"
_USERS = 8
_CONNECTIONS = {"signin": 8, "sso": 16}

Window = tuple[int, int, float, float]  # ok, failed, wall s, server CPU s


def _authorize_query(challenge: str, state: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": "spa",
        "redirect_uri": REDIRECT_URI,
        "scope": _SCOPE,
        "state": state,
        "nonce": state[::-1],
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


async def _exchange(browser: Browser, code: str, verifier: str) -> bool:
    answer = await browser.post(
        "/oauth/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": "spa",
        },
    )
    if answer.status != 200:
        return False
    body = json.loads(answer.body)
    return bool(body.get("id_token")) and bool(body.get("access_token"))


def _redirected(answer: Any, status: int, state: str, issuer: str) -> str | None:
    """The code of a redirect to the client carrying our state and the issuer, else None."""
    location = answer.header("location") or ""
    if answer.status != status or not location.startswith(REDIRECT_URI + "?"):
        return None
    query = answer.redirect_query()
    if query.get("state") != state or query.get("iss") != issuer:
        return None
    return query.get("code")


async def sign_in(browser: Browser, issuer: str, user: int) -> bool:
    """The whole browser sign-in from an empty jar; whether every step answered right."""
    browser.forget()
    verifier, challenge = pkce_pair()
    state = os.urandom(8).hex()
    page = await browser.get("/authorize", _authorize_query(challenge, state))
    hidden = page.hidden_fields()
    if page.status != 200 or "authmesh_csrf" not in browser.cookies or len(hidden) != 2:
        return False
    done = await browser.post(
        "/login",
        {**hidden, "username": f"user{user}", "password": f"user{user}-password"},
    )
    code = _redirected(done, 303, state, issuer)
    if code is None or "authmesh_session" not in browser.cookies:
        return False
    return await _exchange(browser, code, verifier)


async def reauthorize(browser: Browser, issuer: str) -> bool:
    """A new authorization with the live SSO cookie: 302 with a code at once, exchanged."""
    verifier, challenge = pkce_pair()
    state = os.urandom(8).hex()
    answer = await browser.get("/authorize", _authorize_query(challenge, state))
    code = _redirected(answer, 302, state, issuer)
    return code is not None and await _exchange(browser, code, verifier)


async def _window(
    browsers: list[Browser],
    servers: list[AuthServer],
    seconds: float,
    step: Callable[[int], Awaitable[bool]],
) -> Window:
    """Run ``step`` for every browser for ``seconds``: (ok, failed, wall s, server CPU s)."""
    counts = [0, 0]
    cpu0 = sum(s.cpu() for s in servers)
    t0 = time.monotonic()
    stop = t0 + seconds

    async def loop(i: int) -> None:
        while time.monotonic() < stop:
            counts[0 if await step(i) else 1] += 1

    await asyncio.gather(*(loop(i) for i in range(len(browsers))))
    wall = time.monotonic() - t0
    return counts[0], counts[1], wall, sum(s.cpu() for s in servers) - cpu0


async def _backend(
    servers: list[AuthServer], window: float, windows: int
) -> tuple[dict[str, list[Window]], int]:
    """Alternating windows of both flows; also how many SSO browsers failed to sign in."""

    def server(i: int) -> AuthServer:
        return servers[i % len(servers)]

    fresh = [await Browser.open(server(i).port) for i in range(_CONNECTIONS["signin"])]
    sso = [await Browser.open(server(i).port) for i in range(_CONNECTIONS["sso"])]
    setup_failed = 0
    for i, b in enumerate(sso):
        setup_failed += not await sign_in(b, server(i).url, i % _USERS)

    steps: dict[str, tuple[list[Browser], Callable[[int], Awaitable[bool]]]] = {
        "signin": (fresh, lambda i: sign_in(fresh[i], server(i).url, i % _USERS)),
        "sso": (sso, lambda i: reauthorize(sso[i], server(i).url)),
    }
    results: dict[str, list[Window]] = {f: [] for f in FLOWS}
    for _ in range(windows):
        for flow in FLOWS:
            browsers, step = steps[flow]
            results[flow].append(await _window(browsers, servers, window, step))
    for b in fresh + sso:
        b.close()
    return results, setup_failed


def _run_backend(backend: str, window: float, windows: int) -> dict[str, Any]:
    with database(backend) as db:
        settings = db.settings(
            rate_limit_per_minute=0, login_max_failures=10**6, login_lock_after=10**6
        )
        seed(
            settings,
            users=[(f"user{u}", f"user{u}-password", ["user"]) for u in range(_USERS)],
            clients=[
                {
                    "client_id": "spa",
                    "name": "Orders SPA",
                    "public": True,
                    "grant_types": ["authorization_code", "refresh_token"],
                    "scopes": ["orders:read"],
                    "audiences": ["orders"],
                    "redirect_uris": [REDIRECT_URI],
                }
            ],
        )
        cores = len(os.sched_getaffinity(0))
        servers = [AuthServer(settings).start() for _ in range(cores)]
        try:
            results, setup_failed = asyncio.run(_backend(servers, window, windows))
        finally:
            for s in servers:
                s.stop()
    return {"results": results, "setup_failed": setup_failed, "servers": cores}


def run(budget: float) -> PartResult:
    """Both backends (PostgreSQL only if it answers), alternating windows of both flows."""
    started = time.monotonic()
    backends = ["sqlite"] + (["postgres"] if postgres_available() else [])
    window, windows = 2.5, 3
    rows, console, verdicts = [], [], []
    notes = [] if "postgres" in backends else ["PostgreSQL at 127.0.0.1:5432 did not answer."]
    argon_cpu, argon_wall = argon2_cost()
    portable_cpu, _ = argon2_cost(portable=True)
    console.append(
        f"one production Argon2id verification: {argon_cpu.median:.0f} ms CPU, "
        f"{argon_wall.median:.0f} ms wall"
    )
    servers = 0
    cost: dict[str, dict[str, float]] = {}  # backend -> flow -> median CPU ms per flow
    for backend in backends:
        out = _run_backend(backend, window, windows)
        servers = out["servers"]
        for flow in FLOWS:
            samples = out["results"][flow]
            per_cpu = Spread.of([ok / cpu for ok, _, _, cpu in samples if cpu > 0])
            per_wall = Spread.of([ok / wall for ok, _, wall, _ in samples])
            cpu_ms = Spread.of([1e3 * cpu / ok for ok, _, _, cpu in samples if ok])
            cost.setdefault(backend, {})[flow] = cpu_ms.median
            done = sum(ok for ok, _, _, _ in samples)
            failed = sum(f for _, f, _, _ in samples)
            if flow == "sso":
                failed += out["setup_failed"]
            target = TARGETS[flow]
            met = per_cpu.median >= target and failed == 0
            verdict = "met" if met else "NOT met"
            rows.append(
                f"| {backend} | {flow} | {per_cpu.cell(1)} | {cpu_ms.median:.1f} ms | "
                f"{per_wall.cell(1)} | {done} | {failed} | {target:.0f} | {verdict} |"
            )
            verdicts.append(
                f"- **{backend} {flow}**: {per_cpu.median:.1f} per server CPU-second, "
                f"{failed} failed of {done + failed} — {verdict} (≥ {target:.0f} = "
                f"{target / ANCHOR:.0f} × Keycloak's {ANCHOR:.0f} password logins per vCPU, "
                "none failed)"
            )
            console.append(
                f"{backend:>8} {flow:>7}: {per_cpu.median:7.1f}/CPU-s  "
                f"{cpu_ms.median:5.1f} ms CPU each  {per_wall.median:7.1f}/s  failed {failed}"
            )
    markdown = (
        "## signin — browser sign-ins and SSO per server CPU-second\n\n"
        f"_{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"{time.monotonic() - started:.0f} s; {servers} server processes (one per core) "
        f"per backend; {windows} windows of {window} s per flow, alternating; "
        f"{_CONNECTIONS['signin']} browsers signing in, {_CONNECTIONS['sso']} holding an SSO "
        f"cookie; production Argon2id (t={_P.time_cost}, m={_P.memory_cost} KiB, "
        f"p={_P.parallelism})._\n\n"
        "A **sign-in** is `GET /authorize` (the form) → `POST /login` (password) → 303 "
        "with a code → `POST /oauth/token` (authorization_code + PKCE S256, answering an "
        "access token, a refresh token and an ID token), from an empty cookie jar. An "
        "**SSO** re-authorization is `GET /authorize` with the single-sign-on cookie → "
        "302 with a code → the same exchange. Every answer is checked (status, cookies, "
        "`state`, `iss`, `id_token`); *failed* counts flows with any other answer.\n\n"
        "Median (IQR) over windows. *CPU per flow* is the servers' CPU seconds divided by "
        "the flows completed. The CPU counted is the authmesh server processes' (SQLite "
        "runs inside them); PostgreSQL's own backend processes are not counted.\n\n"
        "| backend | flow | per server CPU-s | CPU per flow | per wall second | completed | "
        "failed | target per CPU-s | |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n" + "\n".join(rows) + "\n\n"
        f"Where the time goes. One Argon2id verification with the production parameters "
        f"costs {argon_cpu.cell(0, ' ms')} of CPU ({argon_wall.median:.0f} ms wall), "
        f"measured alone in this process: at most {1000 / argon_cpu.median:.1f} sign-ins "
        "per CPU-second before anything else (libsodium's kernel for this CPU; "
        f"argon2-cffi's portable build of the same costs {portable_cpu.cell(0, ' ms')}). "
        + _rest(cost, argon_cpu.median)
        + _WHERE
        + "\n\n**Targets** (per server CPU-second, against Keycloak's sizing guide: 15 "
        "password logins per second per vCPU):\n\n"
        + "\n".join(verdicts)
        + "\n"
        + ("\n" + " ".join(notes) + "\n" if notes else "")
    )
    return PartResult(markdown=markdown, summary=[*console, *verdicts])


def _rest(cost: dict[str, dict[str, float]], argon_ms: float) -> str:
    """How much CPU a sign-in spends besides Argon2id, against what the target leaves."""
    besides = " and ".join(
        f"{flows['signin'] - argon_ms:.0f} ms on {backend} (an SSO re-authorization: "
        f"{flows['sso']:.0f} ms)"
        for backend, flows in cost.items()
    )
    left = 1000 / TARGETS["signin"] - argon_ms
    return (
        f"Besides it, a sign-in costs the servers {besides}; the target of "
        f"{TARGETS['signin']:.0f} per CPU-second leaves {left:.0f} ms for all of that. "
    )


#: Where the rest goes, from py-spy, cProfile and callgrind profiles of the servers
#: (2026-11-30).
_WHERE = (
    "The rest is mostly the database, statement by statement through SQLAlchemy and "
    "the async driver (a few tenths of a millisecond of CPU each; on SQLite a request's "
    "short statements run in the event loop's thread when they need not wait for a lock, "
    "and a commit is one hand-off to aiosqlite's thread), the transactions around them "
    "(the session, the pooled connection, on PostgreSQL a one-round-trip ping, BEGIN and "
    "COMMIT), then uvicorn, the middleware and routing, two EdDSA signatures per exchange "
    "and the page or JSON of each request. `/authorize` with the SSO cookie is two "
    "statements committed on their own (the client with the browser session and its user; "
    "the new code); the exchange, one read (the client with the code, its browser session, "
    "user and roles) and then, on PostgreSQL, one statement with no transaction around it "
    "that uses the code and opens the session with its refresh token, on SQLite one "
    "transaction of the same three writes. A sign-in adds the form page (the client, "
    "Jinja2, a signed request) and, at `/login`, the client with the user and whether they "
    "have a second factor (one read) before the password check, then one transaction: the "
    "browser session, its audit row and the code."
)
