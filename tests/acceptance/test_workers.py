"""``authmesh serve --workers N``: N processes on one port share limits and wake each other's feeds.

The feed's heartbeat is 5 s, so a sub-second block can only come from the worker
that wrote the event waking the others (LISTEN/NOTIFY or Redis), whichever
worker each service's stream landed on.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import httpx
import pytest

from authmesh.testing import free_port, wait_for
from authmesh.testing.authserver import AuthServerProcess, seed_demo, settings_for
from support.acceptance import (
    OfflineCore,
    RemoteServer,
    measure_rejection,
    process_env,
    report_latency,
    run_service,
    service_config,
)
from support.databases import db_target
from support.harness import Api

REDIS_URL = os.environ.get("AUTHMESH_TEST_REDIS", "redis://127.0.0.1:6379/0")
HEARTBEAT = 5.0
WORKERS = 2


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            # The parent pid is the 4th field, after a command name that may hold spaces.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.postgres
@pytest.mark.redis
def test_workers_share_one_port_the_feed_and_the_login_limits(tmp_path: Path) -> None:
    with db_target("postgres", tmp_path) as target, contextlib.ExitStack() as stack:
        port = free_port()
        issuer = f"http://127.0.0.1:{port}"
        offline = OfflineCore(settings_for(target, port=port, issuer=issuer))
        stack.callback(offline.close)
        secret = seed_demo(offline)["service_secret"]  # type: ignore[arg-type]
        env = process_env(
            target,
            issuer=issuer,
            feed_heartbeat=HEARTBEAT,
            redis_url=REDIS_URL,
            workers=WORKERS,
        )
        env["AUTHMESH_LOGIN_MAX_FAILURES"] = "3"  # the acceptance defaults turn limits off
        server = AuthServerProcess(env, port)
        stack.callback(server.stop)
        server.start()
        assert server.proc is not None
        wait_for(lambda: len(_children(server.proc.pid)) >= WORKERS, timeout=20)

        api = Api(RemoteServer(server.url, offline), secret)  # type: ignore[arg-type]
        stack.callback(api.close)
        config = service_config(issuer, secret, max_feed_staleness=3 * HEARTBEAT)
        services = {
            name: stack.enter_context(run_service(name, config)) for name in ("fastapi", "flask")
        }
        name, password = api.new_user()
        token = str(api.login(name, password)["access_token"])
        for service in services.values():
            assert service.accepts(token)
            wait_for(service.feed_connected)

        assert api.admin("POST", f"/admin/users/{name}/block").status_code == 200
        latencies = measure_rejection(services, token)
        report_latency(f"{WORKERS} workers", latencies)
        assert max(latencies.values()) < 1.0, latencies

        # Each attempt on a new connection, so they spread over the workers;
        # the back-off counts them all.
        answers = []
        for _ in range(5):
            with httpx.Client(base_url=server.url, timeout=10) as fresh:
                answers.append(
                    fresh.post(
                        "/oauth/token",
                        data={
                            "grant_type": "password",
                            "client_id": "web",
                            "username": "alice",
                            "password": "wrong-password-1",
                        },
                    ).status_code
                )
        assert answers[:3] == [400, 400, 400]
        assert answers[-1] == 429


@pytest.mark.parametrize(
    ("database", "message"),
    [
        ("sqlite", "--workers needs PostgreSQL"),
        ("postgres", "--workers needs Redis"),
    ],
)
def test_workers_without_shared_storage_are_refused(
    tmp_path: Path, database: str, message: str
) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHMESH_")}
    args = [str(Path(sys.executable).parent / "authmesh"), "serve", "--workers", "2"]
    args += ["--data-dir", str(tmp_path)]
    if database == "postgres":
        args += ["--database-url", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=30)

    assert result.returncode == 2
    assert result.stderr.startswith(f"authmesh: error: {message}")
    assert "Traceback" not in result.stderr
