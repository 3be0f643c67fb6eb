"""An auth server plus one service built with the SDK, and tokens for it.

Shared by the ``rps`` and ``jwks`` parts: SQLite, rate limiting off, cheap
Argon2 (logins are not measured here), RS256 signing (the algorithm of the
issue's reference figure for PyJWT), and ``users × per_user`` access tokens
obtained by real password grants.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from bench.servers import FAST_ARGON2, AuthServer, ServiceProcess, database, seed

__all__ = ["AUDIENCE", "Stack", "service_stack"]

AUDIENCE = "orders"
SERVICE_CLIENT = "orders-svc"


@dataclass(frozen=True, slots=True)
class Stack:
    """What a running stack offers a part."""

    server: AuthServer
    service: ServiceProcess
    tokens: list[str]
    service_secret: str


def _login_tokens(url: str, users: int, per_user: int) -> list[str]:
    tokens: list[str] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for u in range(users):
            for _ in range(per_user):
                r = client.post(
                    "/oauth/token",
                    data={
                        "grant_type": "password",
                        "client_id": "web",
                        "username": f"user{u}",
                        "password": f"user{u}-password",
                        "scope": "orders:read",
                        "audience": AUDIENCE,
                    },
                )
                r.raise_for_status()
                tokens.append(r.json()["access_token"])
    return tokens


@contextlib.contextmanager
def service_stack(
    *, users: int = 20, per_user: int = 50, service_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """Start everything; stop it all on exit."""
    with database("sqlite") as db:
        settings = db.settings(
            rate_limit_per_minute=0,
            login_max_failures=100000,
            login_lock_after=100000,
            signing_alg="RS256",
            **FAST_ARGON2,
        )
        seeded = seed(
            settings,
            users=[(f"user{u}", f"user{u}-password", ["user"]) for u in range(users)],
            clients=[
                {
                    "client_id": "web",
                    "public": True,
                    "grant_types": ["password", "refresh_token"],
                    "scopes": ["orders:read"],
                    "audiences": [AUDIENCE],
                },
                {
                    "client_id": SERVICE_CLIENT,
                    "grant_types": ["client_credentials"],
                    "audiences": ["catalog"],
                },
            ],
        )
        secret = seeded.secrets[SERVICE_CLIENT]
        with AuthServer(settings) as server:
            tokens = _login_tokens(server.url, users, per_user)
            env = {
                "BENCH_ISSUER": server.url,
                "BENCH_AUDIENCE": AUDIENCE,
                "BENCH_CLIENT_ID": SERVICE_CLIENT,
                "BENCH_CLIENT_SECRET": secret,
                **(service_env or {}),
            }
            with ServiceProcess("bench.rps_app:app", env) as service:
                yield Stack(server, service, tokens, secret)
