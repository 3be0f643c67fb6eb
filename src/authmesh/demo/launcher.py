"""``authmesh demo``: start the auth server and both services, print where to go.

Each part runs in its own process, as microservices do; the launcher seeds the
data folder on first start, writes ``demo.env``, waits until every part
answers, prints the walkthrough, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from authmesh.demo.env import ENV_FILE, listen_host, read_env, write_env
from authmesh.demo.seed import move_webapp, seed, seed_webapp
from authmesh.errors import ConfigError
from authmesh.server.config import load_settings
from authmesh.server.context import ServerContext

__all__ = ["DemoConfig", "run_demo"]

_T = TypeVar("_T")
_CREDENTIAL_KEYS = ("ADMIN_PASSWORD", "USER_PASSWORD", "ORDERS_CLIENT_SECRET")


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoConfig:
    """Where the demo keeps its data and listens.

    ``host`` is the name in every URL (the issuer, the web app's redirect URIs):
    ``localhost`` by default, because browsers offer passkeys (WebAuthn) only to a
    site reached by a name, never by an IP address.
    """

    data_dir: Path
    host: str = "localhost"
    auth_port: int = 8000
    orders_port: int = 8001
    catalog_port: int = 8002
    webapp_port: int = 8003
    argon2_fast: bool = False

    @property
    def webapp_url(self) -> str:
        """Where the web app listens."""
        return f"http://{self.host}:{self.webapp_port}"

    @property
    def issuer(self) -> str:
        """The auth server's public URL."""
        return f"http://{self.host}:{self.auth_port}"

    @property
    def bind_host(self) -> str:
        """The interface every part listens on."""
        return listen_host(self.host)


def _check_port(host: str, port: int, what: str, flag: str) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # As uvicorn does: connections of an earlier run in TIME_WAIT must not count as
        # "in use"; a listening socket still does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} for the {what} is already in use on {host}: stop what uses "
                    f"it or pick another port with {flag}"
                ) from None
            raise ConfigError(f"cannot listen on {host}:{port} for the {what}: {exc}") from None


def _server_env(cfg: DemoConfig) -> dict[str, str]:
    env = {
        "AUTHMESH_DATA_DIR": str(cfg.data_dir),
        "AUTHMESH_HOST": cfg.bind_host,
        "AUTHMESH_PORT": str(cfg.auth_port),
        "AUTHMESH_ISSUER": cfg.issuer,
        # The demo's services rotate in a demo's lifetime only if asked to.
        "AUTHMESH_FEED_HEARTBEAT": "1",
    }
    if cfg.argon2_fast:
        env.update(
            AUTHMESH_ARGON2_TIME_COST="1",
            AUTHMESH_ARGON2_MEMORY_COST="1024",
            AUTHMESH_ARGON2_PARALLELISM="1",
        )
    return env


async def _on_store(cfg: DemoConfig, job: Callable[[ServerContext, str], Awaitable[_T]]) -> _T:
    """Run ``job(ctx, webapp_url)`` on the demo's store before the processes start."""
    env_backup = dict(os.environ)
    os.environ.update(_server_env(cfg))
    try:
        ctx = ServerContext.build(load_settings(None))
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    try:
        await ctx.start()
        return await job(ctx, cfg.webapp_url)
    finally:
        await ctx.close()


def _prepare(cfg: DemoConfig) -> tuple[dict[str, str], bool]:
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    env_path = cfg.data_dir / ENV_FILE
    facts = read_env(env_path)
    first = not all(facts.get(k) for k in _CREDENTIAL_KEYS)
    if first:
        facts.update(asyncio.run(_on_store(cfg, seed)))
    elif not facts.get("WEBAPP_CLIENT_SECRET"):  # a data folder from before the web app
        facts.update(asyncio.run(_on_store(cfg, seed_webapp)))
    elif facts.get("WEBAPP_URL") != cfg.webapp_url:  # another host name or port than before
        asyncio.run(_on_store(cfg, move_webapp))
    base = f"http://{cfg.host}"
    facts.update(
        AUTHMESH_ISSUER=cfg.issuer,
        ORDERS_URL=f"{base}:{cfg.orders_port}",
        CATALOG_URL=f"{base}:{cfg.catalog_port}",
        WEBAPP_URL=cfg.webapp_url,
        DEMO_DATA_DIR=str(cfg.data_dir),
    )
    write_env(env_path, facts)
    return facts, first


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # A new process group: Ctrl-C reaches the launcher, which stops children in order.
    return subprocess.Popen(
        [sys.executable, *args], env={**os.environ, **env}, start_new_session=True
    )


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the {what} exited with status {proc.returncode} while starting")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the {what} did not answer on {url} within {timeout:.0f} s")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in reversed(procs):
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_demo(cfg: DemoConfig) -> int:
    """Run the demo until Ctrl-C (or SIGTERM); returns the exit status."""
    _check_port(cfg.bind_host, cfg.auth_port, "auth server", "--auth-port")
    _check_port(cfg.bind_host, cfg.orders_port, "orders service", "--orders-port")
    _check_port(cfg.bind_host, cfg.catalog_port, "catalog service", "--catalog-port")
    _check_port(cfg.bind_host, cfg.webapp_port, "web app", "--webapp-port")
    facts, first = _prepare(cfg)
    env_path = (cfg.data_dir / ENV_FILE).resolve()
    service_env = {"AUTHMESH_DEMO_ENV": str(env_path)}
    procs: list[subprocess.Popen[bytes]] = []
    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        procs.append(
            _spawn(["-m", "authmesh", "serve", "--log-level", "warning"], _server_env(cfg))
        )
        _wait_healthy(facts["AUTHMESH_ISSUER"], procs[0], "auth server")
        procs.append(_spawn(["-m", "authmesh.demo.catalog"], service_env))
        procs.append(_spawn(["-m", "authmesh.demo.orders"], service_env))
        _wait_healthy(facts["CATALOG_URL"], procs[1], "catalog service")
        _wait_healthy(facts["ORDERS_URL"], procs[2], "orders service")
        procs.append(_spawn(["-m", "authmesh.demo.webapp"], service_env))
        _wait_healthy(facts["WEBAPP_URL"], procs[3], "web app")
        from authmesh.demo.banner import banner

        print(banner(facts, env_path, first_start=first), flush=True)
        while not stopping:
            for proc in procs:
                if proc.poll() is not None:
                    print(f"a demo process exited ({proc.args!r}); stopping", file=sys.stderr)
                    return 1
            time.sleep(0.2)
        print("\nstopping the demo…", flush=True)
        return 0
    except RuntimeError as exc:
        print(f"authmesh demo: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop(procs)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
