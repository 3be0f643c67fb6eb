"""``authmesh doctor``: one OK/WARN/FAIL line per check, exit 1 on any FAIL, nothing changed."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from authmesh.cli.devcert import make_dev_cert
from authmesh.server.config import load_settings
from authmesh.server.doctor.backends import check_clock, check_redis
from authmesh.server.doctor.findings import Status
from authmesh.server.doctor.setup import check_tls
from authmesh.server.master_key import MASTER_KEY_FILE
from authmesh.store.db import Database
from authmesh.testing import free_port
from authmesh.testing.databases import DbTarget, database
from support.cli import cli, cli_env
from support.harness import Api, launch

REDIS_URL = os.environ.get("AUTHMESH_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _report(output: str) -> dict[str, list[str]]:
    """``topic -> [status, …]`` from the lines of the report."""
    found: dict[str, list[str]] = {}
    for line in output.splitlines():
        status, rest = line[:4].strip(), line[6:]
        topic = rest.split("  ")[0].strip()
        found.setdefault(topic, []).append(status)
    return found


def _ran_once(start_server: Callable[..., Api], **settings: object) -> None:
    api = start_server(**settings)
    api.close()
    api.server.stop()


@pytest.fixture
def sqlite_install(tmp_path: Path) -> Iterator[DbTarget]:
    """A SQLite install in the test's folder (checks of files and of settings alone)."""
    with database("sqlite", tmp_path) as target:
        yield target


def _sqlite_ran_once(target: DbTarget, **settings: object) -> None:
    api = launch(target, **settings)
    api.close()
    api.server.stop()


def test_a_server_set_up_by_default_is_healthy(
    start_server: Callable[..., Api], db: DbTarget
) -> None:
    _ran_once(start_server)

    done = cli(cli_env(db), "doctor")

    report = _report(done.stdout)
    assert list(report) == [
        "key encryption",
        "file modes",
        "TLS",
        "issuer URL",
        "database",
        "Redis",
        "clock",
    ]
    assert report["key encryption"] == ["OK"]
    assert set(report["file modes"]) == {"OK"}
    assert report["TLS"] == ["WARN"]  # plain HTTP, on loopback only
    assert report["database"] == report["clock"] == report["Redis"] == ["OK"]
    assert "1 signing key(s) encrypted" in done.stdout
    assert f"{db.data_dir / MASTER_KEY_FILE} is 0600" in done.stdout


def test_what_makes_it_fail(sqlite_install: DbTarget) -> None:
    db = sqlite_install
    _sqlite_ran_once(db)
    env = cli_env(db)
    master = db.data_dir / MASTER_KEY_FILE
    master.chmod(0o644)
    (db.data_dir / "authmesh.db").chmod(0o640)

    loose = cli(env, "doctor", "--host", "0.0.0.0", code=1)

    assert f"FAIL  file modes      {master} is 0644: other users can read the master key" in (
        loose.stdout
    )
    assert "authmesh.db is 0640: other users can read password hashes" in loose.stdout
    assert _report(loose.stdout)["issuer URL"] == ["FAIL"]
    assert "--host 0.0.0.0 listens on every interface" in loose.stdout

    master.rename(db.data_dir / "moved.key")
    lost = cli(env, "doctor", code=1)
    assert _report(lost.stdout)["key encryption"] == ["FAIL"]
    assert "encrypted, but there is no master key" in lost.stdout


def test_plaintext_keys_are_a_warning(sqlite_install: DbTarget) -> None:
    db = sqlite_install
    _sqlite_ran_once(db, insecure_plaintext_keys=True)
    env = cli_env(db)

    chosen = cli({**env, "AUTHMESH_INSECURE_PLAINTEXT_KEYS": "true"}, "doctor")
    pending = cli(env, "doctor")

    assert "WARN  key encryption  1 private key(s) stored in plaintext, by choice" in chosen.stdout
    assert "still stored in plaintext: `authmesh serve` encrypts them at start" in pending.stdout
    assert not (db.data_dir / MASTER_KEY_FILE).exists()


def test_an_unreachable_database_fails_fast_and_nothing_is_created(tmp_path: Path) -> None:
    data = tmp_path / "never"
    env = {
        "AUTHMESH_DATA_DIR": str(data),
        "AUTHMESH_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test",
    }
    started = time.monotonic()

    done = cli(env, "doctor", code=1)

    assert time.monotonic() - started < 15
    assert _report(done.stdout)["database"] == ["FAIL"]
    assert "cannot reach postgresql+asyncpg://postgres@127.0.0.1:" in done.stdout
    assert not data.exists()

    fresh = cli({"AUTHMESH_DATA_DIR": str(data)}, "doctor")
    assert "WARN  database" in fresh.stdout and "no database yet" in fresh.stdout
    assert not data.exists()


async def test_redis_is_pinged_when_configured() -> None:
    down = await check_redis(load_settings(None, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    assert down.status is Status.FAIL

    up = await check_redis(load_settings(None, redis_url=REDIS_URL))
    if up.status is not Status.OK and not os.environ.get("CI"):
        pytest.skip(f"Redis at {REDIS_URL} is not running")
    assert up.status is Status.OK
    assert "answers (PING in" in up.message


def test_tls_certificates_are_checked_for_their_dates(tmp_path: Path) -> None:
    paths = make_dev_cert(tmp_path, ["localhost"], days=30)
    settings = load_settings(
        None,
        tls_cert=paths["cert"],
        tls_key=paths["key"],
        issuer="https://localhost:8443",
    )
    now = dt.datetime.now(dt.UTC)

    assert check_tls(settings, now=now).status is Status.OK
    assert check_tls(settings, now=now + dt.timedelta(days=20)).status is Status.WARN
    expired = check_tls(settings, now=now + dt.timedelta(days=31))
    assert expired.status is Status.FAIL
    assert "expired on" in expired.message
    unreadable = load_settings(None, tls_cert=tmp_path / "nope.pem", tls_key=paths["key"])
    assert check_tls(unreadable).status is Status.FAIL


async def test_a_clock_off_the_databases_is_a_warning_then_a_failure(target_db: Database) -> None:
    settings = load_settings(None, leeway=30)

    def skewed(by: float) -> Callable[[], float]:
        return lambda: time.time() + by

    if target_db.is_sqlite:
        assert (await check_clock(target_db, settings, skewed(100))).status is Status.OK
        return
    assert (await check_clock(target_db, settings)).status is Status.OK
    assert (await check_clock(target_db, settings, skewed(10))).status is Status.WARN
    far = await check_clock(target_db, settings, skewed(-100))
    assert far.status is Status.FAIL
    assert "this machine is -100" in far.message


@pytest.fixture
async def target_db(db: DbTarget) -> AsyncIterator[Database]:
    """The test database, opened (nothing in it: the clock check needs no tables)."""
    database = Database(db.url, schema=db.schema)
    try:
        yield database
    finally:
        await database.dispose()
