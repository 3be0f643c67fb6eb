"""Running the stack for acceptance tests: auth servers, SDK-protected services, probes.

* :func:`start_issuer` starts the real auth server in a thread on a free port,
  counting the requests it serves by path, and seeds the demo accounts.
* :class:`OfflineCore` opens the server's database without a server (seeding
  a database before ``authmesh serve`` starts, or writing while it is down);
  :class:`RemoteServer` lets the server tests' :class:`Api` drive ``authmesh serve``
  running as a process (:class:`~authmesh.testing.authserver.AuthServerProcess`).
* :func:`run_service` starts a FastAPI, Flask or Strawberry service on a free
  port with its own :class:`ServiceAuth`; :class:`Service` talks HTTP to it.
* :func:`measure_rejection` times how long after an action services refuse a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Coroutine, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from authmesh.server.config import ServerSettings
from authmesh.server.context import ServerContext
from authmesh.service import ServiceAuth, ServiceConfig
from authmesh.testing import UvicornThread, WerkzeugThread
from authmesh.testing.authserver import AuthServerThread
from authmesh.testing.databases import DbTarget
from authmesh.testing.server_settings import FAST_ARGON2, server_env
from support.apps import fastapi_app, flask_app, graphql_app
from support.harness import DEFAULTS, Api, launch

__all__ = [
    "FRAMEWORKS",
    "Issuer",
    "OfflineCore",
    "RemoteServer",
    "RequestCounter",
    "Service",
    "Stack",
    "measure_rejection",
    "process_env",
    "report_latency",
    "run_service",
    "run_services",
    "service_config",
    "start_issuer",
]

T = TypeVar("T")
log = logging.getLogger("authmesh.tests.acceptance")

FRAMEWORKS = ("fastapi", "flask", "graphql")


class RequestCounter:
    """Pure ASGI middleware counting the HTTP requests an app serves, by path."""

    def __init__(self, app: ASGIApp, counts: Counter[str]) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.counts[scope["path"]] += 1
        await self.app(scope, receive, send)


@dataclass
class Issuer:
    """A running auth server (in a thread), its HTTP helpers and its request counts."""

    api: Api
    counts: Counter[str]

    @property
    def url(self) -> str:
        """Base URL and issuer."""
        return self.api.url

    @property
    def thread(self) -> AuthServerThread:
        """The server thread (its core, its settings)."""
        return self.api.server

    def stop(self) -> None:
        """Close the client and stop the server."""
        self.api.close()
        self.api.server.stop()


def start_issuer(target: DbTarget, **overrides: Any) -> Issuer:
    """Start the auth server on ``target``, seeded with admin, alice, web and orders-svc."""
    counts: Counter[str] = Counter()

    def count_requests(server: AuthServerThread) -> None:
        server.app.add_middleware(RequestCounter, counts=counts)

    return Issuer(launch(target, prepare=count_requests, **overrides), counts)


class OfflineCore:
    """The auth server's core on its database, without HTTP, on a private event loop.

    Quacks like :class:`AuthServerThread` for :func:`seed_demo` and :class:`Api`
    (``core``, ``call``, ``url``), so an ``Api`` can drive a server running as a
    process while users are created straight in the shared database.
    """

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.url = settings.issuer_url
        self._loop = asyncio.new_event_loop()
        self.core = ServerContext.build(settings)
        self._loop.run_until_complete(self.core.start())

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine against the database."""
        return self._loop.run_until_complete(coro)

    def close(self) -> None:
        """Close the database and the loop."""
        try:
            self._loop.run_until_complete(self.core.close())
        finally:
            self._loop.close()


@dataclass
class RemoteServer:
    """What :class:`Api` needs of a server running as a process: its URL, and a
    core on its database (to create users the quick way)."""

    url: str
    offline: OfflineCore

    @property
    def core(self) -> ServerContext:
        """The offline core."""
        return self.offline.core

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine against the database."""
        return self.offline.call(coro)


def process_env(target: DbTarget, **settings: Any) -> dict[str, str]:
    """``AUTHMESH_*`` variables for ``authmesh serve`` on ``target`` (no limits, cheap Argon2)."""
    return server_env(**target.settings(**DEFAULTS, **FAST_ARGON2, **settings))


def service_config(issuer_url: str, secret: str, **overrides: Any) -> ServiceConfig:
    """A service ``orders`` trusting ``issuer_url``, following the feed as ``orders-svc``."""
    values: dict[str, Any] = {
        "issuer": issuer_url,
        "audience": "orders",
        "client_id": "orders-svc",
        "client_secret": secret,
        "max_feed_staleness": 6.0,
        "feed_backoff_initial": 0.05,
        "feed_backoff_max": 0.3,
    }
    values.update(overrides)
    return ServiceConfig(**values)


class Service:
    """A running SDK-protected service: its URL, its ServiceAuth and an HTTP client."""

    def __init__(self, framework: str, url: str, auth: ServiceAuth) -> None:
        self.framework = framework
        self.url = url
        self.auth = auth
        self.http = httpx.Client(base_url=url, timeout=5)

    @staticmethod
    def _headers(token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        """GET with an optional bearer token."""
        return self.http.get(path, headers=self._headers(token))

    def post(self, path: str, token: str | None = None) -> httpx.Response:
        """POST with an optional bearer token."""
        return self.http.post(path, headers=self._headers(token))

    def graphql(self, query: str, token: str | None = None) -> httpx.Response:
        """A GraphQL query."""
        return self.http.post("/graphql", json={"query": query}, headers=self._headers(token))

    def whoami(self, token: str | None) -> httpx.Response:
        """The protected "who am I" call of this framework (REST ``/me`` or GraphQL ``me``)."""
        if self.framework == "graphql":
            return self.graphql("{ me { sub roles scopes } }", token)
        return self.get("/me", token)

    def accepts(self, token: str) -> bool:
        """Whether the service lets this token in (a 401, or the 503 of a stale feed,
        means no; anything else fails)."""
        response = self.whoami(token)
        if response.status_code in (401, 503):
            return False
        assert response.status_code == 200, (self.framework, response.text)
        if self.framework == "graphql":
            assert response.json()["data"]["me"], response.text
        return True

    def health(self) -> dict[str, Any]:
        """The service's ``/health`` document."""
        response = self.get("/health")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def feed_connected(self) -> bool:
        """Whether the SDK's revocation subscriber is connected now."""
        return bool(self.auth.feed and self.auth.feed.connected)

    def close(self) -> None:
        """Close the client."""
        self.http.close()


@dataclass
class Stack:
    """The auth server and the FastAPI, Flask and Strawberry services trusting it."""

    issuer: Issuer
    services: dict[str, Service]


@contextlib.contextmanager
def run_service(
    framework: str, config: ServiceConfig, *, required: bool = False, port: int = 0
) -> Iterator[Service]:
    """A service of ``framework`` (fastapi, flask, graphql) on loopback ``port`` (0: a free one)."""
    auth = ServiceAuth(config)
    if framework == "flask":
        app, ext = flask_app(auth)
        try:
            with WerkzeugThread(app, port=port) as wsgi:
                service = Service(framework, wsgi.url, auth)
                try:
                    yield service
                finally:
                    service.close()
        finally:
            ext.stop()
        return
    asgi = graphql_app(auth, required=required) if framework == "graphql" else fastapi_app(auth)
    with UvicornThread(asgi, port=port) as server:
        service = Service(framework, server.url, auth)
        try:
            yield service
        finally:
            service.close()


@contextlib.contextmanager
def run_services(
    config: ServiceConfig, frameworks: tuple[str, ...] = FRAMEWORKS
) -> Iterator[dict[str, Service]]:
    """One service of each framework, each with its own :class:`ServiceAuth` on ``config``."""
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(run_service(name, config)) for name in frameworks}


def measure_rejection(
    services: Mapping[str, Service], token: str, *, timeout: float = 5.0
) -> dict[str, float]:
    """Seconds from now until each service first refuses ``token`` (polled every ~2 ms).

    Raises:
        AssertionError: a service still accepts the token after ``timeout``.
    """
    started = time.monotonic()
    pending = dict(services)
    latencies: dict[str, float] = {}
    while pending:
        for name, service in list(pending.items()):
            if not service.accepts(token):
                latencies[name] = time.monotonic() - started
                del pending[name]
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{sorted(pending)} still accept the token after {timeout} s")
        time.sleep(0.002)
    return latencies


def report_latency(what: str, latencies: Mapping[str, float]) -> None:
    """Write revocation latencies to the log and to stdout (``pytest -s`` / ``-rP``)."""
    figures = ", ".join(f"{name} {ms * 1000:.1f} ms" for name, ms in sorted(latencies.items()))
    log.warning("revocation latency, %s: %s", what, figures)
    print(f"revocation latency, {what}: {figures}")
