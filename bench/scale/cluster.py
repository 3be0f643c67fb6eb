"""The server side of the scale test: one PostgreSQL schema, Redis, replicas, HAProxy.

Every replica is a real ``authmesh serve`` process on a free port with the same
settings: the database (a fresh schema in ``test``, dropped afterwards), the
master key, Redis (rate limits and feed wake-ups across replicas) and the
issuer URL, which is HAProxy's front address, the only one clients see.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from authmesh.testing import free_port
from authmesh.testing.authserver import AuthServerProcess
from authmesh.testing.server_settings import server_env
from bench.scale.haproxy import HaproxyProcess, render_config
from bench.servers import FAST_ARGON2, Seeded, database, seed

__all__ = [
    "ADMIN",
    "AUDIENCE",
    "LOAD_CLIENT",
    "PUBLIC_CLIENT",
    "REDIS_URL",
    "STREAMS_PER_CLIENT",
    "Cluster",
    "cluster",
    "feed_client",
    "health_path",
]

#: A database of its own, so the rate-limit keys never meet the tests'.
REDIS_URL = os.environ.get("AUTHMESH_SCALE_REDIS", "redis://127.0.0.1:6379/7")
AUDIENCE = "orders"
PUBLIC_CLIENT = "web"
#: Feed streams one service client opens at most per replica: a server may
#: refuse more (a per-client limit), so many followers are many services.
STREAMS_PER_CLIENT = 20


def feed_client(index: int) -> str:
    """The confidential client of service ``index`` (feed and client_credentials)."""
    return f"svc-{index}"


#: Confidential client of the driver's client_credentials load.
LOAD_CLIENT = "batch-job"
ADMIN = ("admin", "admin-password-1")


def health_path(url: str) -> str:
    """``/readyz`` when the replica at ``url`` has it, else ``/healthz``.

    Readiness is the right check for a balancer (a replica that cannot reach
    its database leaves the pool); older servers only have liveness.
    """
    try:
        if httpx.get(f"{url}/readyz", timeout=5).status_code != 404:
            return "/readyz"
    except httpx.HTTPError:
        pass
    return "/healthz"


@dataclass
class Cluster:
    """Running replicas behind HAProxy, and the secrets a client needs."""

    url: str
    replicas: list[AuthServerProcess]
    proxy: HaproxyProcess
    secrets: dict[str, str]
    users: int
    victims: int
    health: str
    events: list[tuple[str, float, str]] = field(default_factory=list)

    def kill(self, index: int) -> float:
        """SIGKILL replica ``index``; the wall-clock instant."""
        replica = self.replicas[index]
        assert replica.proc is not None
        os.kill(replica.pid, signal.SIGKILL)
        at = time.time()
        replica.proc.wait()
        replica.stop()  # closes the pipe
        self.events.append(("kill", at, f"r{index + 1}"))
        return at

    def restart(self, index: int) -> float:
        """Start replica ``index`` again on its port; the instant it answers."""
        self.replicas[index].start()
        at = time.time()
        self.events.append(("restart", at, f"r{index + 1}"))
        return at


def _seed(settings: dict[str, Any], users: int, victims: int, feed_clients: int) -> Seeded:
    return seed(
        settings,
        users=[(*ADMIN, ["admin", "user"])]
        + [(f"user{i}", f"user{i}-password", ["user"]) for i in range(users)]
        + [(f"victim{i}", f"victim{i}-password", ["user"]) for i in range(victims)],
        clients=[
            {
                "client_id": PUBLIC_CLIENT,
                "public": True,
                "grant_types": ["password", "refresh_token"],
                "scopes": ["orders:read"],
                "audiences": [AUDIENCE],
            },
            *(
                {"client_id": feed_client(i), "grant_types": ["client_credentials"]}
                for i in range(feed_clients)
            ),
            {
                "client_id": LOAD_CLIENT,
                "grant_types": ["client_credentials"],
                "scopes": ["orders:read"],
                "audiences": [AUDIENCE],
            },
        ],
    )


@contextlib.contextmanager
def cluster(
    *,
    replicas: int = 3,
    users: int = 200,
    victims: int = 200,
    redis: bool = True,
    refresh_reuse_grace: float = 5.0,
    feed_clients: int = 20,
) -> Iterator[Cluster]:
    """Start everything; stop it all and drop the schema on exit."""
    front = free_port()
    url = f"http://127.0.0.1:{front}"
    with database("postgres") as db, contextlib.ExitStack() as stack:
        settings = db.settings(
            issuer=url,
            master_key=secrets.token_urlsafe(32),
            # High enough never to refuse the load (all of it comes from HAProxy's
            # address), yet every request goes through the limiter.
            trusted_proxies="127.0.0.1",  # HAProxy: the clients' addresses come through
            rate_limit_per_minute=10_000_000,
            login_max_failures=100_000,
            login_lock_after=100_000,
            refresh_reuse_grace=refresh_reuse_grace,
            **({"redis_url": REDIS_URL} if redis else {}),
            **FAST_ARGON2,
        )
        seeded = _seed(settings, users, victims, feed_clients)
        env = server_env(**settings)
        processes = [AuthServerProcess(env, free_port()) for _ in range(replicas)]
        for process in processes:
            stack.callback(process.stop)
        # In parallel: each replica spends a second or two importing and starting.
        with ThreadPoolExecutor(len(processes)) as pool:
            list(pool.map(lambda p: p.start(), processes))
        health = health_path(processes[0].url)
        config = render_config(
            bind=f"127.0.0.1:{front}",
            servers=[(f"r{i + 1}", f"127.0.0.1:{p.port}") for i, p in enumerate(processes)],
            health_path=health,
        )
        proxy = stack.enter_context(HaproxyProcess(config, url))
        yield Cluster(url, processes, proxy, seeded.secrets, users, victims, health)
