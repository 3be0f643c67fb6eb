"""Real processes for the HTTP parts: the auth server, databases, CPU accounting.

The auth server runs as ``python -m bench.authserver`` (``authmesh serve``'s
app, wrapped to count requests per path *at the server*), one OS process each,
on SQLite (a file in a temporary folder) or PostgreSQL (a fresh schema in the
database ``test`` at 127.0.0.1:5432, dropped afterwards).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "FAST_ARGON2",
    "PG_URL",
    "AuthServer",
    "Database",
    "ServiceProcess",
    "cpu_seconds",
    "database",
    "free_port",
    "get_request",
    "load",
    "postgres_available",
    "seed",
]

PG_URL = os.environ.get("AUTHMESH_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
_PG_DSN = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
#: Cheap Argon2 where password hashing is not what is measured (seeding many users).
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_cost": 1024, "argon2_parallelism": 1}
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads), from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_PG_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def postgres_available() -> bool:
    """Whether the PostgreSQL server answers."""
    try:
        asyncio.run(_pg("SELECT 1"))
    except Exception:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Database:
    """Where a part's auth server keeps its data."""

    backend: str
    url: str
    schema: str | None
    data_dir: Path

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """``ServerSettings`` values for this database."""
        values: dict[str, Any] = {"data_dir": self.data_dir, "database_url": self.url}
        if self.schema:
            values["database_schema"] = self.schema
        return {**values, **overrides}


@contextlib.contextmanager
def database(backend: str) -> Iterator[Database]:
    """A fresh, empty database of ``backend`` (``sqlite`` or ``postgres``)."""
    tmp = Path(tempfile.mkdtemp(prefix="authmesh-bench-"))
    try:
        if backend == "sqlite":
            yield Database("sqlite", f"sqlite+aiosqlite:///{tmp / 'authmesh.db'}", None, tmp)
            return
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        asyncio.run(_pg(f"CREATE SCHEMA {schema}"))
        try:
            yield Database("postgres", PG_URL, schema, tmp)
        finally:
            asyncio.run(_pg(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass(slots=True)
class Seeded:
    """Secrets of the clients :func:`seed` registered."""

    secrets: dict[str, str] = field(default_factory=dict)


def seed(
    settings: dict[str, Any],
    *,
    users: Sequence[tuple[str, str, Sequence[str]]] = (),
    clients: Sequence[dict[str, Any]] = (),
) -> Seeded:
    """Migrate the database and create users and clients, without a server."""
    from authmesh.server import accounts
    from authmesh.server import clients as client_service
    from authmesh.server.config import load_settings
    from authmesh.server.core import AuthCore

    async def main() -> Seeded:
        core = AuthCore.build(load_settings(None, **settings))
        out = Seeded()
        try:
            await core.start()
            for username, password, roles in users:
                await accounts.create_user(
                    core, username=username, password=password, roles=list(roles)
                )
            for spec in clients:
                new = await client_service.register_client(core, **spec)
                if new.secret is not None:
                    out.secrets[spec["client_id"]] = new.secret
        finally:
            await core.close()
        return out

    return asyncio.run(main())


class AuthServer:
    """One auth-server process (``python -m bench.authserver``) on a free port."""

    def __init__(self, settings: dict[str, Any], *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHMESH_")}
        for name, value in {**settings, "port": self.port, "host": "127.0.0.1"}.items():
            env[f"AUTHMESH_{name.upper()}"] = str(value)
        self._env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> AuthServer:
        """Start and wait for ``/healthz``."""
        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.authserver"],
            cwd=root,
            env=self._env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"auth server exited: {err[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("auth server did not become healthy")

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.proc is not None
        return self.proc.pid

    def cpu(self) -> float:
        """CPU seconds the server has used so far."""
        return cpu_seconds(self.pid)

    def counts(self) -> dict[str, int]:
        """Requests served so far, by path (counted inside the server process)."""
        return dict(httpx.get(f"{self.url}/_bench/counts", timeout=5).json())

    def stop(self) -> None:
        """SIGTERM, then wait (SIGKILL after 10 s)."""
        _terminate(self.proc)

    def __enter__(self) -> AuthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _terminate(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class ServiceProcess:
    """A uvicorn-served ASGI app (``module:app``) in its own process, one worker."""

    def __init__(self, target: str, env: dict[str, str], *, port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, probe: str = "/open", timeout: float = 60) -> ServiceProcess:
        """Start and wait until ``probe`` answers 200."""
        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                self.target,
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=root,
            env=self._env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"{self.target} exited: {err[-2000:]}")
            try:
                if httpx.get(self.url + probe, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.target} did not start")

    def stop(self) -> None:
        """SIGTERM, then wait (SIGKILL after 10 s)."""
        _terminate(self.proc)

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def load(spec: dict[str, Any]) -> dict[str, Any]:
    """One window of :mod:`bench.httpload` in its own process; its JSON result."""
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-m", "bench.httpload"],
        cwd=root,
        input=json.dumps(spec).encode(),
        capture_output=True,
        check=False,
        timeout=float(spec["duration"]) + float(spec.get("warmup", 0.5)) + 60,
    )
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr.decode()[-2000:]}")
    return dict(json.loads(out.stdout))


def get_request(path: str, token: str | None = None) -> str:
    """A raw keep-alive HTTP/1.1 GET, optionally with a bearer token."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n"
