"""The real auth server on a free loopback port, in a thread or in a process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from authmesh.server import accounts, clients
from authmesh.server.app import create_app
from authmesh.server.config import ServerSettings, load_settings
from authmesh.server.core import AuthCore
from support.databases import DbTarget
from support.net import free_port

__all__ = ["FAST_ARGON2", "AuthServerProcess", "AuthServerThread", "seed_demo", "settings_for"]

T = TypeVar("T")

#: Cheap Argon2 so tests don't spend seconds hashing; production parameters are
#: exercised by the benchmark.
FAST_ARGON2: dict[str, int] = {
    "argon2_time_cost": 1,
    "argon2_memory_cost": 1024,
    "argon2_parallelism": 1,
}


def settings_for(target: DbTarget, port: int | None = None, **overrides: Any) -> ServerSettings:
    """Server settings for a test database on a free port."""
    values: dict[str, Any] = {
        "port": port or free_port(),
        "data_dir": target.data_dir,
        "database_url": target.url,
        "database_schema": target.schema,
        # Brute-force limits would turn a suite's many deliberate failures from one
        # address into 429s; the security tests set their own limits.
        "login_max_failures": 1000,
        "login_lock_after": 5000,
        "rate_limit_per_minute": 0,
        **FAST_ARGON2,
    }
    values.update(overrides)
    return load_settings(None, **values)


class AuthServerThread:
    """uvicorn serving the auth server app in a background thread with its own loop."""

    def __init__(self, settings: ServerSettings, *, clock: Any = None) -> None:
        self.settings = settings
        self.app = create_app(settings, **({"clock": clock} if clock else {}))
        self.core: AuthCore = self.app.state.core
        self.url = settings.issuer_url
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host=settings.host,
                port=settings.port,
                log_level="warning",
                lifespan="on",
                timeout_graceful_shutdown=1,
            )
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._server.serve())
        self._loop.close()

    def start(self) -> AuthServerThread:
        """Start and wait until it answers."""
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the auth server did not start")
            time.sleep(0.02)
        return self

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop (to seed users, clients)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def stop(self) -> None:
        """Shut down and wait."""
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def __enter__(self) -> AuthServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def seed_demo(server: AuthServerThread) -> dict[str, str]:
    """An admin, a user, a public first-party client and a service client."""
    core = server.core

    async def seed() -> dict[str, str]:
        await accounts.create_user(
            core, username="admin", password="admin-password-1", roles=["admin", "user"]
        )
        await accounts.create_user(
            core, username="alice", password="alice-password-1", roles=["user"]
        )
        await clients.register_client(
            core,
            client_id="web",
            public=True,
            grant_types=["password", "refresh_token"],
            scopes=["orders:read", "orders:write", "catalog:read"],
            audiences=["orders", "catalog"],
        )
        svc = await clients.register_client(
            core,
            client_id="orders-svc",
            grant_types=["client_credentials"],
            scopes=["catalog:read"],
            audiences=["catalog"],
            roles=["service"],
        )
        assert svc.secret is not None
        return {"service_secret": svc.secret}

    return server.call(seed())


class AuthServerProcess:
    """``authmesh serve`` as a separate OS process (for multi-process and restart tests)."""

    def __init__(self, env: Mapping[str, str], port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._env = {**os.environ, **env, "AUTHMESH_PORT": str(port)}
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> AuthServerProcess:
        """Start and wait for /healthz."""
        exe = Path(sys.executable).parent / "authmesh"
        self._proc = subprocess.Popen(
            [str(exe), "serve", "--log-level", "warning"],
            env=self._env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"authmesh serve exited: {err[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("authmesh serve did not become healthy")

    def stop(self) -> None:
        """SIGTERM, then wait."""
        if self._proc and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
