"""Operator commands of safe operation: ``db prune``, and what ``serve`` refuses."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from authmesh.server.master_key import MASTER_KEY_FILE
from authmesh.testing import FakeClock, free_port
from authmesh.testing.databases import DbTarget
from authmesh.testing.processes import ServerProcess
from authmesh.testing.server_settings import FAST_ARGON2, server_env
from support.cli import cli, cli_env
from support.harness import Api

DAY = 86400.0
EXE = Path(sys.executable).parent / "authmesh"


def _removed(output: str) -> dict[str, int]:
    """``label -> count`` from the lines of ``db prune``."""
    found = {}
    for line in output.splitlines():
        if line.endswith(" removed"):
            label, _, count = line.removesuffix(" removed").rpartition(" ")
            found[label.strip()] = int(count)
    return found


def test_db_prune_removes_what_is_due_and_says_how_much(
    start_server: Callable[..., Api], db: DbTarget
) -> None:
    # A server that ran a hundred days ago: two sessions, one rotated, both ended.
    api = start_server(clock=FakeClock(time.time() - 100 * DAY))
    for _ in range(2):
        login = api.login()
        rotated = api.refresh(login["refresh_token"]).json()["refresh_token"]
        assert api.revoke(rotated).status_code == 200
    api.close()
    api.server.stop()
    env = cli_env(db)

    first = cli(env, "db", "prune")

    assert _removed(first.stdout) == {
        "refresh tokens": 4,
        "sessions": 2,
        "authorization codes": 0,
        "revocation events": 1,  # the newest stays
        "audit events": _removed(first.stdout)["audit events"],
    }
    assert _removed(first.stdout)["audit events"] >= 4  # seeding and the sign-ins
    assert "audit events are kept 7776000 s (audit_retention)" in first.stdout
    again = cli(env, "db", "prune")
    assert set(_removed(again.stdout).values()) == {0}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "[::]"])
def test_serve_on_a_wildcard_host_needs_an_issuer(db: DbTarget, host: str) -> None:
    refused = cli(cli_env(db), "serve", "--host", host, code=2)

    assert refused.stderr.startswith(f"authmesh: error: --host {host} listens on every interface")
    assert "--issuer" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_serve_on_every_interface_with_an_issuer_and_plaintext_keys_by_choice(
    tmp_path: Path,
) -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    env = server_env(host="0.0.0.0", port=port, issuer=issuer, data_dir=data, **FAST_ARGON2)
    args = [str(EXE), "serve", "--insecure-plaintext-keys", "--log-level", "warning"]
    server = ServerProcess(args, url=issuer, env=env)
    data.mkdir(mode=0o755)  # made by hand, open to other users
    data.chmod(0o755)
    try:
        server.start()
        discovery = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=5).json()
        assert server.proc is not None and server.proc.stderr is not None
        server.proc.terminate()
        server.proc.wait(timeout=15)
        stderr = server.proc.stderr.read().decode()
    finally:
        server.stop()

    assert discovery["issuer"] == issuer
    assert f"authmesh: warning: {data} is 0755: other users can look inside" in stderr
    # The explicit choice: no master key made, the private key stored as it is.
    assert not (data / MASTER_KEY_FILE).exists()
    with sqlite3.connect(data / "authmesh.db") as conn:
        ((encrypted, private),) = conn.execute("SELECT encrypted, private_jwk FROM signing_keys")
    assert encrypted == 0
    assert "d" in json.loads(private)
