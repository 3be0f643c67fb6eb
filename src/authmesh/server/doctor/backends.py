"""Checks of what the server talks to: the database (and its clock), and Redis."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import text
from sqlalchemy.engine import make_url

from authmesh.jose.policy import Clock
from authmesh.server.config import ServerSettings
from authmesh.server.doctor.files import sqlite_path
from authmesh.server.doctor.findings import Finding, fail, ok, warn
from authmesh.store.db import Database, latest_revision

__all__ = ["CLOCK", "DATABASE", "REDIS", "Reached", "check_clock", "check_redis", "open_database"]

DATABASE, REDIS, CLOCK = "database", "Redis", "clock"
#: How long a backend may take to answer before it counts as unreachable.
TIMEOUT = 5.0
_DB_TIME = text("SELECT extract(epoch FROM clock_timestamp())")


def _problem(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {TIMEOUT:g} s"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__


@dataclass(frozen=True, slots=True)
class Reached:
    """The database check: its finding, the open database, and its schema's revision."""

    finding: Finding
    db: Database | None = None
    revision: str | None = None


async def open_database(settings: ServerSettings) -> Reached:
    """Reach the database and read its schema's revision.

    Reads only: a missing SQLite file is reported, not created.
    """
    where = make_url(settings.db_url).render_as_string(hide_password=True)
    path = sqlite_path(settings)
    if path is not None and not path.exists():
        return Reached(warn(DATABASE, f"no database yet at {path}: `authmesh serve` creates it"))
    db = Database(settings.db_url, schema=settings.database_schema, create=False)
    try:
        async with asyncio.timeout(TIMEOUT), db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            try:
                version = (
                    await conn.execute(text("SELECT version_num FROM alembic_version"))
                ).scalar_one_or_none()
            except Exception:
                version = None
    except Exception as exc:
        await db.dispose()
        return Reached(fail(DATABASE, f"cannot reach {where}: {_problem(exc)}"))
    latest = latest_revision()
    if version != latest:
        behind = warn(
            DATABASE,
            f"{where} answers, but its schema is at {version or 'nothing'}, not {latest}: "
            "`authmesh db upgrade` (serve does it at start)",
        )
        return Reached(behind, db, version)
    return Reached(ok(DATABASE, f"{where} answers; schema up to date ({latest})"), db, version)


async def check_clock(db: Database, settings: ServerSettings, clock: Clock = time.time) -> Finding:
    """This machine's clock against the database server's: tokens' times depend on both."""
    if db.is_sqlite:
        return ok(CLOCK, "SQLite runs on this machine's clock; nothing to compare")
    try:
        async with asyncio.timeout(TIMEOUT), db.engine.connect() as conn:
            before = clock()
            theirs = float((await conn.execute(_DB_TIME)).scalar_one())
            after = clock()
    except Exception as exc:
        return fail(CLOCK, f"cannot read the database's clock: {_problem(exc)}")
    offset = theirs - (before + after) / 2
    slack = 1.0 + (after - before)
    if abs(offset) <= slack:
        return ok(CLOCK, f"this machine and the database agree (within {abs(offset):.2f} s)")
    advice = f"tokens' times allow {settings.leeway} s of leeway; sync the clocks (NTP)"
    message = f"this machine is {-offset:+.1f} s off the database's clock: {advice}"
    if abs(offset) <= settings.leeway / 2:
        return warn(CLOCK, message)
    return fail(CLOCK, message)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


async def check_redis(settings: ServerSettings) -> Finding:
    """Redis answers a PING, when it is configured."""
    if not settings.redis_url:
        return ok(REDIS, "not configured (optional: shared rate limits and feed wake-ups)")
    import redis.asyncio as aioredis

    where = _without_password(settings.redis_url)
    client = aioredis.from_url(
        settings.redis_url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            started = time.perf_counter()
            await client.ping()
            took = (time.perf_counter() - started) * 1000
    except Exception as exc:
        return fail(REDIS, f"cannot reach {where}: {_problem(exc)}")
    finally:
        await client.aclose()
    return ok(REDIS, f"{where} answers (PING in {took:.1f} ms)")
