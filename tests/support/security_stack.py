"""The system under attack: the real auth server and a real SDK-protected FastAPI service.

:func:`start_stack` starts the auth server (uvicorn on a free loopback port, in a
thread, SQLite) with the demo accounts, and an ``orders`` service built with
:mod:`authmesh.service.fastapi` exactly as a developer writes it, following the
server's revocation feed. Tests talk to both over HTTP only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import Depends, FastAPI

from authmesh.service import Principal, ServiceAuth, ServiceConfig
from authmesh.service.fastapi import CurrentPrincipal, install, require
from authmesh.testing import UvicornThread, wait_for
from authmesh.testing.databases import DbTarget
from support.harness import Api, launch

__all__ = [
    "INTERNALS",
    "Service",
    "Stack",
    "assert_invalid_token",
    "assert_no_internals",
    "from_address",
    "start_stack",
]

#: What must never reach a client: tracebacks, source paths, exception class names.
INTERNALS = re.compile(
    r"Traceback|File \"|\.py\b|site-packages|Exception|Error\(|sqlalchemy|sqlite|"
    r"PRIVATE KEY|authmesh\.(jose|server|service|store)",
    re.IGNORECASE,
)


def assert_no_internals(text: str) -> None:
    """The body carries no stack trace, source path, class name or key material."""
    found = INTERNALS.search(text)
    assert found is None, f"internal detail {found.group(0)!r} in {text[:300]!r}"


def assert_invalid_token(response: httpx.Response) -> None:
    """RFC 6750 §3.1: 401, ``WWW-Authenticate: Bearer error="invalid_token"``, clean body."""
    assert response.status_code == 401, (response.status_code, response.text[:300])
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer "), challenge
    assert 'error="invalid_token"' in challenge, challenge
    assert response.json()["error"] == "invalid_token"
    assert_no_internals(response.text)
    assert_no_internals(challenge)


def from_address(base_url: str, address: str) -> httpx.Client:
    """An HTTP client whose connections come from another loopback address.

    The server keys its login limits on the peer address; an attacker on
    ``127.0.0.66`` then does not lock out the admin on ``127.0.0.1``.
    """
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=base_url, transport=transport, timeout=30)


def orders_service(auth: ServiceAuth) -> FastAPI:
    """The protected service: a read endpoint and a state-changing one."""
    app = FastAPI()
    install(app, auth)
    orders: list[dict[str, Any]] = []

    @app.get("/me")
    async def me(user: CurrentPrincipal) -> dict[str, Any]:
        return {"sub": user.subject, "roles": sorted(user.roles)}

    @app.post("/orders", status_code=201)
    async def create_order(
        user: Principal = Depends(require(scopes="orders:write")),
    ) -> dict[str, Any]:
        orders.append({"by": user.subject})
        return {"created_by": user.subject, "count": len(orders)}

    @app.get("/orders/count")
    async def count() -> dict[str, int]:
        return {"count": len(orders)}

    return app


@dataclass
class Service:
    """The running protected service."""

    url: str
    auth: ServiceAuth
    http: httpx.Client

    def me(self, token: str) -> httpx.Response:
        """``GET /me`` with a bearer token."""
        return self.http.get("/me", headers={"Authorization": f"Bearer {token}"})

    def rejected(self) -> dict[str, int]:
        """The SDK's rejection counters by reason code (a copy)."""
        return dict(self.auth.stats.rejected)

    def feed_connected(self) -> bool:
        """Whether the SDK follows the revocation feed now."""
        return bool(self.auth.feed and self.auth.feed.connected)


@dataclass
class Stack:
    """A seeded auth server and the orders service trusting it."""

    api: Api
    service: Service
    db_url: str
    data_dir: Path


@contextmanager
def start_stack(data_dir: Path, **server_overrides: Any) -> Iterator[Stack]:
    """Start the auth server (SQLite in ``data_dir``) and the orders service."""
    url = f"sqlite+aiosqlite:///{data_dir / 'authmesh.db'}"
    api = launch(DbTarget("sqlite", url, None, data_dir), **server_overrides)
    runner: UvicornThread | None = None
    http: httpx.Client | None = None
    try:
        auth = ServiceAuth(
            ServiceConfig(
                issuer=api.url,
                audience="orders",
                client_id="orders-svc",
                client_secret=api.service_secret,
                # Every forged kid must not hammer the JWKS endpoint: one fetch per 10 s.
                jwks_min_refetch_interval=10,
            )
        )
        runner = UvicornThread(orders_service(auth)).start()
        http = httpx.Client(base_url=runner.url, timeout=15)
        service = Service(runner.url, auth, http)
        wait_for(service.feed_connected, timeout=10)
        yield Stack(api, service, url, data_dir)
    finally:
        if http is not None:
            http.close()
        if runner is not None:
            runner.stop()
        api.close()
        api.server.stop()
