"""The operator CLI (``authmesh users|clients|db|serve``) through the real console script."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import jwt
import pytest
from click.testing import Result
from sqlalchemy import inspect
from typer.testing import CliRunner

from authmesh.cli.main import app as cli_app
from authmesh.store.db import Database
from authmesh.testing import free_port, wait_for
from authmesh.testing.authserver import AuthServerProcess
from authmesh.testing.databases import DbTarget
from authmesh.testing.server_settings import FAST_ARGON2
from support.harness import DEFAULTS, Api, claims_of, header_of

EXE = Path(sys.executable).parent / "authmesh"
CAROL = ("carol", "carol-password-1")


def _env(db: DbTarget, *, default_sqlite: bool = False, **extra: str) -> dict[str, str]:
    """Settings of a CLI run on the test database, as ``AUTHMESH_*`` variables."""
    env = {"AUTHMESH_DATA_DIR": str(db.data_dir), "COLUMNS": "250"}
    if not (default_sqlite and db.backend == "sqlite"):
        env["AUTHMESH_DATABASE_URL"] = db.url
    if db.schema:
        env["AUTHMESH_DATABASE_SCHEMA"] = db.schema
    for name, value in {**FAST_ARGON2, **DEFAULTS}.items():
        env[f"AUTHMESH_{name.upper()}"] = str(value)
    env.update(extra)
    return env


def _process_env(env: dict[str, str]) -> dict[str, str]:
    """The full environment of a child process (no stray AUTHMESH_* of ours)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUTHMESH_")}
    return {**base, **env}


def _run(
    env: dict[str, str], *args: str, stdin: str | None = None, code: int = 0
) -> subprocess.CompletedProcess[str]:
    """The real ``authmesh`` console script in a child process."""
    done = subprocess.run(
        [str(EXE), *args],
        env=_process_env(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == code, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def _cli(env: dict[str, str], *args: str, stdin: str | None = None, code: int = 0) -> Result:
    """The same root command in this process (no interpreter start-up: much faster)."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("AUTHMESH_")}
    result = CliRunner().invoke(cli_app, list(args), input=stdin, env={**unset, **env})
    assert result.exit_code == code, (
        f"{args}: {result.exit_code}\n{result.stdout}\n{result.stderr}\n{result.exception!r}"
    )
    return result


@contextmanager
def _serving(env: dict[str, str]) -> Iterator[AuthServerProcess]:
    """``authmesh serve`` as a process (without the AUTHMESH_* variables of this one)."""
    server = AuthServerProcess(env, free_port())
    try:
        yield server
    finally:
        server.stop()


def test_users_commands(start_server: Callable[..., Api], db: DbTarget) -> None:
    api = start_server()
    env = _env(db)

    added = _cli(
        env, "users", "add", CAROL[0], "--role", "user", "--password-stdin", stdin=CAROL[1] + "\n"
    )
    assert added.stdout.startswith("carol  id=")
    assert added.stdout.rstrip().endswith("roles=user  active")
    first = api.login(*CAROL)
    assert claims_of(first["access_token"])["roles"] == ["user"]

    roles = _cli(env, "users", "roles", "carol", "user", "ops")
    assert "roles=ops,user" in roles.stdout
    refreshed = api.refresh(first["refresh_token"]).json()
    assert claims_of(refreshed["access_token"])["roles"] == ["ops", "user"]

    blocked = _cli(env, "users", "block", "carol")
    assert blocked.stdout.rstrip().endswith("blocked")
    assert api.introspect(refreshed["access_token"]) == {"active": False}
    assert api.password_grant(*CAROL).json()["error"] == "invalid_grant"

    unblocked = _cli(env, "users", "unblock", "carol")
    assert unblocked.stdout.rstrip().endswith("active")
    second = api.login(*CAROL)

    logout = _cli(env, "users", "logout", "carol")
    assert logout.stdout.strip() == "1 session(s) of carol ended"
    assert api.introspect(second["access_token"]) == {"active": False}
    assert api.refresh(second["refresh_token"]).status_code == 400

    passwd = _cli(
        env, "users", "passwd", "carol", "--password-stdin", stdin="carol-new-password-2\n"
    )
    assert "password of carol changed" in passwd.stdout
    assert api.password_grant(*CAROL).status_code == 400
    assert api.password_grant("carol", "carol-new-password-2").status_code == 200

    listing = _cli(env, "users", "list")
    for name in ("admin", "alice", "carol"):
        assert name in listing.stdout
    assert "ops, user" in listing.stdout


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ("users", "add", "alice", "--password-stdin"),
            "another-password-1\n",
            "user 'alice' already exists",
        ),
        (
            ("users", "add", "dave", "--password-stdin"),
            "short\n",
            "the password must have at least 10 characters",
        ),
        (
            ("users", "add", "bad name", "--password-stdin"),
            "long-enough-pass-1\n",
            "username must be 1-150 of",
        ),
        (("users", "block", "nobody"), None, "no user 'nobody'"),
        (("users", "roles", "alice", "has space"), None, "invalid role name"),
    ],
    ids=["duplicate", "weak-password", "bad-username", "unknown-user", "bad-role"],
)
def test_users_command_errors_exit_1_with_a_message(
    start_server: Callable[..., Api],
    db: DbTarget,
    args: tuple[str, ...],
    stdin: str | None,
    message: str,
) -> None:
    start_server()

    done = _cli(_env(db), *args, stdin=stdin, code=1)

    assert done.stderr.startswith("authmesh: error: ")
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_console_script_reports_errors_with_exit_1(
    start_server: Callable[..., Api], db: DbTarget
) -> None:
    start_server()

    done = _run(
        _env(db), "users", "add", "alice", "--password-stdin", stdin="another-password-1\n", code=1
    )

    assert done.stderr == "authmesh: error: user 'alice' already exists\n"
    assert done.stdout == ""


def test_clients_commands(start_server: Callable[..., Api], db: DbTarget) -> None:
    api = start_server()
    env = _env(db)

    added = _cli(
        env,
        "clients",
        "add",
        "billing-svc",
        "--scope",
        "catalog:read",
        "--audience",
        "catalog",
        "--role",
        "service",
    )
    lines = added.stdout.splitlines()
    assert lines[0] == "client billing-svc registered (grants: client_credentials)"
    assert lines[1].startswith("client_secret: ")
    secret = lines[1].removeprefix("client_secret: ")
    grant = {
        "grant_type": "client_credentials",
        "client_id": "billing-svc",
        "client_secret": secret,
    }
    token = api.token(grant).json()["access_token"]
    claims = api.verify(token, audience="catalog")
    assert (claims["sub"], claims["roles"]) == ("billing-svc", ["service"])

    # A new public client gets the browser flow, never the password grant by default.
    browser = _cli(env, "clients", "add", "app", "--public", "--redirect-uri", "https://app/cb")
    assert browser.stdout.strip() == (
        "client app registered (grants: authorization_code, refresh_token)"
    )
    nowhere = _cli(env, "clients", "add", "app2", "--public", code=1)
    assert "needs at least one redirect URI" in nowhere.stderr
    public = _cli(
        env,
        "clients",
        "add",
        "spa",
        "--public",
        "--audience",
        "orders",
        "--grant",
        "password",
        "--grant",
        "refresh_token",
    )
    assert public.stdout.strip() == "client spa registered (grants: password, refresh_token)"
    assert "client_secret" not in public.stdout
    assert api.login(client_id="spa")["refresh_token"]

    listing = _cli(env, "clients", "list")
    for client_id in ("billing-svc", "spa", "web", "orders-svc"):
        assert client_id in listing.stdout
    assert "confidential" in listing.stdout and "public" in listing.stdout
    assert secret not in listing.stdout

    removed = _cli(env, "clients", "remove", "billing-svc")
    assert removed.stdout.strip() == "client billing-svc removed"
    assert api.introspect(token) == {"active": False}
    assert api.token(grant).status_code == 401
    again = _cli(env, "clients", "remove", "billing-svc", code=1)
    assert "no client 'billing-svc'" in again.stderr


def test_db_upgrade_on_a_fresh_database(db: DbTarget) -> None:
    env = _env(db)

    done = _cli(env, "db", "upgrade")
    again = _cli(env, "db", "upgrade")

    assert done.stdout.startswith("database is up to date: ")
    assert again.stdout == done.stdout
    assert asyncio.run(_tables(db)) >= {"users", "sessions", "refresh_tokens", "signing_keys"}


async def _tables(db: DbTarget) -> set[str]:
    database = Database(db.url, schema=db.schema)
    try:
        async with database.engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await database.dispose()


def test_end_to_end_cli_user_then_serve_then_login(db: DbTarget) -> None:
    """The issue's end-to-end check: a fresh data dir, a CLI user, a served login, PyJWT."""
    env = _env(db, default_sqlite=True)
    _cli(env, "db", "upgrade")  # operator commands never create a database themselves
    _run(
        env,
        "users",
        "add",
        "admin",
        "--role",
        "admin",
        "--password-stdin",
        stdin="admin-password-1\n",
    )
    _cli(
        env,
        "clients",
        "add",
        "web",
        "--public",
        "--audience",
        "orders",
        "--scope",
        "orders:read",
        "--grant",
        "password",
    )
    with _serving(env) as server:
        server.start()
        response = httpx.post(
            f"{server.url}/oauth/token",
            data={
                "grant_type": "password",
                "username": "admin",
                "password": "admin-password-1",
                "client_id": "web",
            },
        )
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        jwks_uri = httpx.get(f"{server.url}/.well-known/openid-configuration").json()["jwks_uri"]
        key = jwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token, key.key, algorithms=["EdDSA"], audience="orders", issuer=server.url
        )

    assert claims["roles"] == ["admin"]
    assert claims["scope"] == "orders:read"
    assert claims["preferred_username"] == "admin"
    if db.backend == "sqlite":
        assert (db.data_dir / "authmesh.db").is_file()


def test_serve_with_a_wrong_master_key_fails_clearly(db: DbTarget) -> None:
    env = _env(db, AUTHMESH_MASTER_KEY="the right master key 1")
    _cli(env, "db", "upgrade")  # creates the first signing key, encrypted

    with (
        _serving({**env, "AUTHMESH_MASTER_KEY": "the wrong master key 2"}) as server,
        pytest.raises(RuntimeError) as failure,
    ):
        server.start()

    assert "cannot decrypt signing key" in str(failure.value)
    assert "AUTHMESH_MASTER_KEY is wrong or the stored key was altered" in str(failure.value)
    # The CLI says the same, as a usage/configuration error (exit 2), without a traceback.
    wrong = _cli({**env, "AUTHMESH_MASTER_KEY": "the wrong master key 2"}, "users", "list", code=2)
    assert wrong.stderr.startswith("authmesh: error: cannot decrypt signing key ")


def test_keys_rotate_reaches_a_running_server(
    start_server: Callable[..., Api], db: DbTarget
) -> None:
    api = start_server(key_publish_ahead=5, jwks_max_age=1)
    env = _env(db, AUTHMESH_KEY_PUBLISH_AHEAD="5", AUTHMESH_JWKS_MAX_AGE="1")
    old_kid = api.jwks()["keys"][0]["kid"]
    before = api.login()["access_token"]

    rotated = _cli(env, "keys", "rotate")

    assert rotated.stdout.startswith("new key ")
    new_kid = rotated.stdout.split()[2]
    assert new_kid != old_kid
    listing = _cli(env, "keys", "list")
    assert new_kid in listing.stdout and "pending" in listing.stdout
    # The server picks the key up from the database and publishes it before it signs
    # with it: in every round, a token by the new key comes after a JWKS that has it.
    rounds: list[tuple[bool, bool]] = []

    def signs_with_the_new_key() -> bool:
        published = new_kid in {k["kid"] for k in api.jwks()["keys"]}
        signed = header_of(api.login()["access_token"])["kid"] == new_kid
        rounds.append((published, signed))
        return signed

    wait_for(signs_with_the_new_key, timeout=20, interval=0.2)
    assert all(published for published, signed in rounds if signed), rounds
    assert api.verify(before, audience="orders")["sub"]
    states = _cli(env, "keys", "list").stdout
    assert "retired" in states and "active" in states


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-proxy", "no-proxy-trusted"])
def test_the_client_address_behind_a_trusted_balancer(
    start_server: Callable[..., Api], db: DbTarget, trusted: bool
) -> None:
    api = start_server()
    extra = {"AUTHMESH_TRUSTED_PROXIES": "127.0.0.1"} if trusted else {}
    env = _env(db, **extra)
    with _serving(env) as server:
        server.start()
        refused = httpx.post(
            f"{server.url}/oauth/token",
            data={
                "grant_type": "password",
                "username": "alice",
                "password": "not-her-password",
                "client_id": "web",
            },
            headers={"X-Forwarded-For": "203.0.113.7"},
        )
        assert refused.status_code == 400
    entries = api.admin("GET", "/admin/audit", params={"action": "login"}).json()["events"]
    failed = [e for e in entries if e["outcome"] != "success"]
    # Believed only from a proxy the operator named: anyone can send the header.
    assert failed[0]["client_ip"] == ("203.0.113.7" if trusted else "127.0.0.1")
