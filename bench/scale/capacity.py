"""``python -m bench.scale.capacity``: what one grant costs the database, and a session's bytes.

The real auth server (PostgreSQL, in a thread of this process) with SQLAlchemy
event listeners on its engine. Each grant is run ``REPEATS`` times, one request
at a time, and the statements sent (``before_cursor_execute``), the pool
checkouts (each one a ``;`` ping round trip, store/db.py) and the transactions
(``begin``) are counted from the request's start to its answer:

- ``password``, ``refresh_token``, ``client_credentials`` at ``POST /oauth/token``;
- ``authorization_code``: the code exchange alone, and the whole browser
  sign-in (``GET /authorize``, ``POST /login`` with the password, the exchange).

Then ``SESSIONS`` sign-ins and one refresh each, and the growth of every table
(rows, ``pg_total_relation_size`` with indexes, mean ``pg_column_size`` of a
row) per session. Prints Markdown (the figures docs/scaling.md builds on) and
writes it as the ``scale_capacity`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from authmesh.testing.authserver import AuthServerThread, settings_for
from authmesh.testing.databases import database
from bench.browser import Browser, pkce_pair
from bench.servers import FAST_ARGON2, PG_URL, seed

__all__ = ["main"]

REPEATS = 20
SESSIONS = 1000
REDIRECT_URI = "http://127.0.0.1:8765/callback"
_TABLES = (
    "sessions",
    "refresh_tokens",
    "authorization_codes",
    "revocation_events",
    "audit_events",
    "users",
    "user_roles",
)


class Counts:
    """Statements, checkouts and transactions seen on one engine."""

    def __init__(self, engine: Any) -> None:
        self.seen: Counter[str] = Counter()
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "begin", lambda _conn: self._add("transactions"))
        event.listen(engine.pool, "checkout", lambda *_: self._add("pings"))

    def _add(self, what: str) -> None:
        self.seen[what] += 1

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        self.seen["statements"] += 1
        self.seen["writes" if verb in ("INSERT", "UPDATE", "DELETE") else "reads"] += 1

    @contextlib.contextmanager
    def counting(self, into: Counter[str]) -> Iterator[None]:
        before = Counter(self.seen)
        yield
        into.update(self.seen - before)


def _seed(settings: dict[str, Any]) -> dict[str, str]:
    users = [(f"user{i}", f"user{i}-password", ["user"]) for i in range(50)]
    return seed(
        settings,
        users=users,
        clients=[
            {
                "client_id": "web",
                "public": True,
                "grant_types": ["password", "refresh_token"],
                "scopes": ["orders:read"],
                "audiences": ["orders"],
            },
            {"client_id": "svc", "grant_types": ["client_credentials"], "audiences": ["orders"]},
            {
                "client_id": "spa",
                "public": True,
                "grant_types": ["authorization_code", "refresh_token"],
                "scopes": ["orders:read"],
                "audiences": ["orders"],
                "redirect_uris": [REDIRECT_URI],
            },
        ],
    ).secrets


class Measure:
    """Requests against the running server, counted per kind."""

    def __init__(self, server: AuthServerThread, counts: Counts, secret: str) -> None:
        self.server = server
        self.counts = counts
        self.secret = secret
        self.per: dict[str, Counter[str]] = {}
        self.n: Counter[str] = Counter()

    async def count(self, kind: str, step: Callable[[], Awaitable[Any]]) -> Any:
        into = self.per.setdefault(kind, Counter())
        with self.counts.counting(into):
            result = await step()
        self.n[kind] += 1
        return result

    async def token(self, browser: Browser, form: dict[str, str]) -> dict[str, Any]:
        import json

        answer = await browser.post("/oauth/token", form)
        if answer.status != 200:
            raise RuntimeError(f"{form['grant_type']}: {answer.status} {answer.body[:200]!r}")
        return dict(json.loads(answer.body))

    def password_form(self, i: int) -> dict[str, str]:
        user = f"user{i % 50}"
        return {
            "grant_type": "password",
            "client_id": "web",
            "username": user,
            "password": f"{user}-password",
            "audience": "orders",
        }

    async def browser_sign_in(self, browser: Browser, i: int) -> None:
        browser.forget()
        verifier, challenge = pkce_pair()
        state = os.urandom(8).hex()
        query = {
            "response_type": "code",
            "client_id": "spa",
            "redirect_uri": REDIRECT_URI,
            "scope": "openid orders:read",
            "state": state,
            "nonce": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        page = await browser.get("/authorize", query)
        user = f"user{i % 50}"
        form = {**page.hidden_fields(), "username": user, "password": f"{user}-password"}
        done = await browser.post("/login", form)
        code = done.redirect_query().get("code")
        if done.status != 303 or not code:
            raise RuntimeError(f"the browser sign-in failed: {done.status}")
        exchange = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": "spa",
        }
        await self.count("authorization_code", partial(self.token, browser, exchange))

    async def run(self) -> None:
        browser = await Browser.open(self.server.settings.port)
        basic = {"client_id": "svc", "client_secret": self.secret}
        try:
            for i in range(REPEATS):
                tokens = await self.count(
                    "password", partial(self.token, browser, self.password_form(i))
                )
                refresh = {
                    "grant_type": "refresh_token",
                    "client_id": "web",
                    "refresh_token": tokens["refresh_token"],
                }
                await self.count("refresh_token", partial(self.token, browser, refresh))
                cc = {"grant_type": "client_credentials", "audience": "orders", **basic}
                await self.count("client_credentials", partial(self.token, browser, cc))
                await self.count(
                    "browser sign-in (authorize + login + exchange)",
                    partial(self.browser_sign_in, browser, i),
                )
        finally:
            browser.close()


async def _sessions(server: AuthServerThread, m: Measure) -> None:
    browser = await Browser.open(server.settings.port)
    try:
        for i in range(SESSIONS):
            tokens = await m.token(browser, m.password_form(i))
            await m.token(
                browser,
                {
                    "grant_type": "refresh_token",
                    "client_id": "web",
                    "refresh_token": tokens["refresh_token"],
                },
            )
    finally:
        browser.close()


async def _table_sizes(server: AuthServerThread) -> dict[str, tuple[int, int, float]]:
    """Per table: rows, bytes with indexes and TOAST, mean row bytes."""
    out: dict[str, tuple[int, int, float]] = {}
    async with server.core.db.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        for table in _TABLES:
            rows, size, mean = (
                await conn.execute(
                    text(
                        f"SELECT count(*), pg_total_relation_size('{table}'), "
                        f"coalesce(avg(pg_column_size(t.*)), 0) FROM {table} t"
                    )
                )
            ).one()
            out[table] = (int(rows), int(size), float(mean))
    return out


def measure() -> tuple[dict[str, Counter[str]], Counter[str], dict[str, Any]]:
    """Counts per grant, repeats per grant, and table growth per session."""
    with tempfile.TemporaryDirectory() as tmp, database("postgres", Path(tmp), pg_url=PG_URL) as db:
        secrets = _seed(db.settings(**FAST_ARGON2))
        settings = settings_for(db)
        with AuthServerThread(settings) as server:
            counts = Counts(server.core.db.engine.sync_engine)
            m = Measure(server, counts, secrets["svc"])
            asyncio.run(m.run())
            before = server.call(_table_sizes(server))
            asyncio.run(_sessions(server, m))
            after = server.call(_table_sizes(server))
    growth = {
        table: {
            "rows": (after[table][0] - before[table][0]) / SESSIONS,
            "bytes": (after[table][1] - before[table][1]) / SESSIONS,
            "row_bytes": after[table][2],
        }
        for table in _TABLES
    }
    return m.per, m.n, growth


def markdown(
    per: dict[str, Counter[str]], n: Counter[str], growth: dict[str, Any], seconds: float
) -> str:
    """The ``scale_capacity`` section."""
    from bench.scale.results import stamp

    rows = [
        f"| {kind} | {c['statements'] / n[kind]:.1f} | {c['reads'] / n[kind]:.1f} | "
        f"{c['writes'] / n[kind]:.1f} | {c['transactions'] / n[kind]:.1f} | "
        f"{c['pings'] / n[kind]:.1f} |"
        for kind, c in per.items()
    ]
    tables = [
        f"| {t} | {g['rows']:.2f} | {g['row_bytes']:.0f} | {g['bytes']:.0f} |"
        for t, g in growth.items()
    ]
    total = sum(g["bytes"] for g in growth.values())
    return (
        "## scale_capacity — database work per grant, bytes per session (PostgreSQL)\n\n"
        f"{stamp(seconds)}\n\n"
        f"`python -m bench.scale.capacity`: the auth server with SQLAlchemy event listeners "
        f"on its engine, one request at a time, {REPEATS} of each; per request:\n\n"
        "| grant | statements | reads | writes | transactions | pool checkouts (a ping each) |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: |\n" + "\n".join(rows) + "\n\n"
        f"Growth per session over {SESSIONS:,} sessions (one password sign-in and one "
        "refresh each; sizes with indexes and TOAST, after `ANALYZE`):\n\n"
        "| table | rows per session | mean row bytes | bytes per session |\n"
        "| --- | ---: | ---: | ---: |\n" + "\n".join(tables) + "\n"
        f"| **all** | | | **{total:.0f}** |\n"
    )


def main() -> int:
    """Measure, print, and write the section (``--no-write``: print only)."""
    from bench.scale.results import write_sections

    started = time.monotonic()
    per, n, growth = measure()
    section = markdown(per, n, growth, time.monotonic() - started)
    print(section)
    if "--no-write" not in sys.argv:
        write_sections({"scale_capacity": section})
    return 0


if __name__ == "__main__":
    sys.exit(main())
