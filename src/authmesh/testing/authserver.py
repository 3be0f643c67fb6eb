"""The real auth server for integration tests: in a thread of this process, or as a process.

Needs the ``server`` extra. :func:`settings_for` gives settings on a test
database with cheap password hashing and no login limits; :class:`AuthServerThread`
serves them with uvicorn in a thread (its context is at hand to seed users);
:class:`AuthServerProcess` runs ``authmesh serve`` as a child process.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from authmesh.server import accounts, clients
from authmesh.server.app import create_app
from authmesh.server.config import ServerSettings, load_settings
from authmesh.server.context import ServerContext
from authmesh.server.serving import AuthServer, uvicorn_config
from authmesh.testing.databases import DbTarget
from authmesh.testing.net import free_port
from authmesh.testing.processes import ServerProcess
from authmesh.testing.server_settings import FAST_ARGON2

__all__ = ["AuthServerProcess", "AuthServerThread", "seed_demo", "settings_for"]

T = TypeVar("T")


def settings_for(target: DbTarget, port: int | None = None, **overrides: Any) -> ServerSettings:
    """Server settings for a test database on a free port."""
    values: dict[str, Any] = {
        "port": port or free_port(),
        **target.settings(),
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
    """uvicorn serving the auth server app in a background thread with its own loop.

    ``uvicorn_options`` override what :func:`~authmesh.server.serving.uvicorn_config`
    sets (a test may pick the HTTP protocol implementation, for instance).
    """

    def __init__(
        self,
        settings: ServerSettings,
        *,
        clock: Any = None,
        uvicorn_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.app = create_app(settings, **({"clock": clock} if clock else {}))
        self.core: ServerContext = self.app.state.context
        self.url = settings.issuer_url
        #: What a seeding step returned (``seed_demo``: the service client's secret).
        self.seeded: dict[str, str] = {}
        # As `authmesh serve` runs it: read timeouts, header bound, feed drained on stop.
        self._server = AuthServer(
            uvicorn_config(
                self.app,
                settings,
                **{
                    "log_level": "warning",
                    "lifespan": "on",
                    "timeout_graceful_shutdown": 1,
                    **(uvicorn_options or {}),
                },
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

    def running_requests(self) -> int:
        """Requests the server is handling now (their application tasks)."""
        return len(self._server.server_state.tasks)

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
    """An admin, a user, a public first-party client and a service client.

    Users ``admin`` / ``admin-password-1`` (roles admin, user) and ``alice`` /
    ``alice-password-1`` (role user); the public client ``web`` (password and
    refresh grants) and the service client ``orders-svc``, whose secret is
    returned as ``service_secret``.
    """
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


class AuthServerProcess(ServerProcess):
    """``authmesh serve`` as a separate OS process (multi-process and restart tests).

    Args:
        env: its settings as ``AUTHMESH_*`` variables
            (:func:`~authmesh.testing.server_settings.server_env`).
        port: the port to serve on (a free one if not given).
    """

    def __init__(self, env: Mapping[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        exe = Path(sys.executable).parent / "authmesh"
        super().__init__(
            [str(exe), "serve", "--log-level", "warning"],
            url=f"http://127.0.0.1:{self.port}",
            env={**env, "AUTHMESH_PORT": str(self.port)},
        )
