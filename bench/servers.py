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
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from authmesh.testing import databases, free_port
from authmesh.testing.databases import DbTarget
from authmesh.testing.processes import ServerProcess
from authmesh.testing.server_settings import FAST_ARGON2, server_env

__all__ = [
    "FAST_ARGON2",
    "PG_URL",
    "AuthServer",
    "ServiceProcess",
    "cpu_seconds",
    "database",
    "get_request",
    "load",
    "postgres_available",
    "seed",
]

PG_URL = os.environ.get("AUTHMESH_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads), from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def postgres_available() -> bool:
    """Whether the PostgreSQL server answers."""
    return databases.postgres_available(PG_URL)


@contextlib.contextmanager
def database(backend: str) -> Iterator[DbTarget]:
    """A fresh, empty database of ``backend`` (``sqlite`` or ``postgres``)."""
    tmp = Path(tempfile.mkdtemp(prefix="authmesh-bench-"))
    try:
        with databases.database(backend, tmp, pg_url=PG_URL, prefix="bench_") as target:
            yield target
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
    from authmesh.server.context import ServerContext

    async def main() -> Seeded:
        ctx = ServerContext.build(load_settings(None, **settings))
        out = Seeded()
        try:
            await ctx.start()
            for username, password, roles in users:
                await accounts.create_user(
                    ctx, username=username, password=password, roles=list(roles)
                )
            for spec in clients:
                new = await client_service.register_client(ctx, **spec)
                if new.secret is not None:
                    out.secrets[spec["client_id"]] = new.secret
        finally:
            await ctx.close()
        return out

    return asyncio.run(main())


class AuthServer(ServerProcess):
    """One auth-server process (``python -m bench.authserver``) on a free port."""

    def __init__(self, settings: dict[str, Any], *, port: int | None = None) -> None:
        self.port = port or free_port()
        super().__init__(
            [sys.executable, "-m", "bench.authserver"],
            url=f"http://127.0.0.1:{self.port}",
            env=server_env(**settings, port=self.port, host="127.0.0.1"),
            cwd=_ROOT,
        )

    def cpu(self) -> float:
        """CPU seconds the server has used so far."""
        return cpu_seconds(self.pid)

    def counts(self) -> dict[str, int]:
        """Requests served so far, by path (counted inside the server process)."""
        return dict(httpx.get(f"{self.url}/_bench/counts", timeout=5).json())


class ServiceProcess(ServerProcess):
    """A uvicorn-served ASGI app (``module:app``) in its own process, one worker."""

    def __init__(self, target: str, env: dict[str, str], *, port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        args = [sys.executable, "-m", "uvicorn", target, "--port", str(self.port)]
        super().__init__(
            [*args, "--log-level", "warning", "--no-access-log"],
            url=f"http://127.0.0.1:{self.port}",
            env=env,
            cwd=_ROOT,
            probe="/open",
        )


def load(spec: dict[str, Any]) -> dict[str, Any]:
    """One window of :mod:`bench.httpload` in its own process; its JSON result."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.httpload"],
        cwd=_ROOT,
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
