"""The operator commands facing a database that is missing, mistyped, empty, down or silent.

Each answers with one line, ``authmesh: error: …``, and exit status 2, never a
traceback; none of them creates a database it was not asked to (only ``serve``
and ``db upgrade`` may).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from click.testing import Result
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from authmesh.cli.main import app
from authmesh.testing import TcpProxy, free_port
from authmesh.testing.databases import PG_URL, DbTarget
from authmesh.testing.server_settings import FAST_ARGON2
from support.databases import db_target

EXE = Path(sys.executable).parent / "authmesh"
#: Every command that works on the server's database, with what it needs besides.
OPERATOR_COMMANDS: list[tuple[tuple[str, ...], str | None]] = [
    (("users", "add", "carol", "--password-stdin"), "carol-password-1\n"),
    (("users", "list"), None),
    (("users", "block", "carol"), None),
    (("users", "unblock", "carol"), None),
    (("users", "roles", "carol", "user"), None),
    (("users", "passwd", "carol", "--password-stdin"), "carol-password-2\n"),
    (("users", "logout", "carol"), None),
    (("clients", "add", "billing-svc"), None),
    (("clients", "list"), None),
    (("clients", "remove", "billing-svc"), None),
    (("keys", "list"), None),
    (("keys", "rotate"), None),
    (("audit",), None),
]
_IDS = [" ".join(args[:2]) for args, _ in OPERATOR_COMMANDS]
#: A silent database must cost a command about this, not the driver's 60 s default.
_CONNECT_TIMEOUT = "0.5"
_ANSWER_BOUND = 10.0


def _invoke(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("AUTHMESH_")}
    return CliRunner().invoke(app, list(args), input=stdin, env={**unset, **env})


def _assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("authmesh: error: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.mark.parametrize(("args", "stdin"), OPERATOR_COMMANDS, ids=_IDS)
def test_a_mistyped_data_dir_is_one_line_and_creates_nothing(
    tmp_path: Path, args: tuple[str, ...], stdin: str | None
) -> None:
    typo = tmp_path / "dta"

    result = _invoke({}, *args, "--data-dir", str(typo), stdin=stdin)

    _assert_one_line_error(result, f"no authmesh database at {typo / 'authmesh.db'}")
    assert "authmesh db upgrade" in result.stderr
    assert not typo.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_missing_sqlite_file_is_one_line_and_stays_missing(tmp_path: Path) -> None:
    path = tmp_path / "data" / "auth.db"
    (tmp_path / "data").mkdir()

    result = _invoke({}, "users", "list", "--database-url", f"sqlite:///{path}")

    _assert_one_line_error(result, f"no authmesh database at {path}")
    assert list((tmp_path / "data").iterdir()) == []


def test_db_upgrade_creates_the_database_then_the_commands_use_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"AUTHMESH_DATA_DIR": str(data), **_argon2_env()}

    assert _invoke(env, "db", "upgrade").exit_code == 0
    added = _invoke(env, "users", "add", "carol", "--password-stdin", stdin="carol-password-1\n")

    assert added.exit_code == 0, added.stderr
    assert (data / "authmesh.db").is_file()
    assert "carol" in _invoke(env, "users", "list").stdout


def _argon2_env() -> dict[str, str]:
    return {f"AUTHMESH_{name.upper()}": str(value) for name, value in FAST_ARGON2.items()}


@pytest.fixture
def empty_schema(tmp_path: Path) -> Iterator[DbTarget]:
    with db_target("postgres", tmp_path) as target:
        yield target


def _pg_env(url: str, schema: str | None = None) -> dict[str, str]:
    env = {"AUTHMESH_DATABASE_URL": url, **_argon2_env()}
    if schema:
        env["AUTHMESH_DATABASE_SCHEMA"] = schema
    return env


@pytest.mark.postgres
@pytest.mark.parametrize(("args", "stdin"), OPERATOR_COMMANDS, ids=_IDS)
def test_a_database_without_tables_is_one_line_and_stays_empty(
    empty_schema: DbTarget, args: tuple[str, ...], stdin: str | None
) -> None:
    env = _pg_env(empty_schema.url, empty_schema.schema)

    result = _invoke(env, *args, stdin=stdin)

    _assert_one_line_error(result, "has no authmesh tables", "authmesh db upgrade")
    assert asyncio.run(_tables_in(empty_schema)) == 0


async def _tables_in(target: DbTarget) -> int:
    conn = await asyncpg.connect(target.url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            target.schema,
        )
    finally:
        await conn.close()
    return count


@pytest.mark.parametrize(("args", "stdin"), OPERATOR_COMMANDS, ids=_IDS)
def test_a_refused_connection_is_one_line(args: tuple[str, ...], stdin: str | None) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/test"

    result = _invoke(_pg_env(url), *args, stdin=stdin)

    _assert_one_line_error(result, "cannot use the database", "ConnectionRefusedError")


@pytest.mark.postgres
def test_a_silent_database_is_one_line_within_the_connect_timeout() -> None:
    pg = make_url(PG_URL)
    assert pg.host and pg.port
    with TcpProxy(pg.host, pg.port) as proxy:
        proxy.freeze()
        url = pg.set(port=proxy.port).render_as_string(hide_password=False)
        env = {**_pg_env(url), "AUTHMESH_DATABASE_CONNECT_TIMEOUT": _CONNECT_TIMEOUT}
        started = time.monotonic()
        result = _invoke(env, "users", "list")
        took = time.monotonic() - started

    _assert_one_line_error(result, "cannot use the database", "TimeoutError")
    assert took < _ANSWER_BOUND


def test_serve_with_an_unreachable_database_is_one_line() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/test"

    result = _invoke(_pg_env(url), "serve", "--port", str(free_port()))

    _assert_one_line_error(result, "cannot use the database", "ConnectionRefusedError")


def test_the_console_script_prints_one_line_for_a_mistyped_data_dir(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHMESH_")}
    typo = tmp_path / "dta"

    done = subprocess.run(
        [str(EXE), "users", "list", "--data-dir", str(typo)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert done.stderr == (
        f"authmesh: error: no authmesh database at {typo / 'authmesh.db'}: check --data-dir "
        "or --database-url, or create it with 'authmesh db upgrade'\n"
    )
    assert not typo.exists()
