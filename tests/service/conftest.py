"""Fixtures of the service SDK tests: a fake issuer on a port, an in-memory one, clocks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from authmesh.service import ServiceAuth, ServiceConfig

from .fake_issuer import FakeIssuer, IssuerState

MOCK_ISSUER = "https://auth.test"


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MockIssuer:
    """Discovery and JWKS over ``httpx.MockTransport`` (no sockets); counts fetches."""

    def __init__(self, *, max_age: int | None = 300) -> None:
        self.state = IssuerState(issuer=MOCK_ISSUER)
        self.state.add_key()
        self.max_age = max_age
        self.down = False
        self.jwks_override: Any = None
        self.requests: list[str] = []
        self.transport = httpx.MockTransport(self._handle)

    @property
    def jwks_fetches(self) -> int:
        return self.requests.count("/.well-known/jwks.json")

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": MOCK_ISSUER,
                    "jwks_uri": f"{MOCK_ISSUER}/.well-known/jwks.json",
                    "token_endpoint": f"{MOCK_ISSUER}/oauth/token",
                    "revocation_feed_endpoint": f"{MOCK_ISSUER}/revocations",
                    "revocation_feed_stream_endpoint": f"{MOCK_ISSUER}/revocations/stream",
                },
            )
        if request.url.path == "/.well-known/jwks.json":
            headers = {} if self.max_age is None else {"Cache-Control": f"max-age={self.max_age}"}
            body = self.state.jwks() if self.jwks_override is None else self.jwks_override
            return httpx.Response(200, content=json.dumps(body).encode(), headers=headers)
        return httpx.Response(404)


def mock_config(**overrides: Any) -> ServiceConfig:
    """A config for the in-memory issuer."""
    values: dict[str, Any] = {
        "issuer": MOCK_ISSUER,
        "audience": "orders",
        "client_id": "orders",
        "client_secret": "s3cret",
    }
    values.update(overrides)
    return ServiceConfig(**values)


@pytest.fixture
def mock_issuer() -> MockIssuer:
    return MockIssuer()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mock_auth(mock_issuer: MockIssuer) -> Iterator[ServiceAuth]:
    """A ServiceAuth on the in-memory issuer with keys loaded and a fresh (unstarted) feed."""
    auth = ServiceAuth(
        mock_config(), transport=mock_issuer.transport, async_transport=mock_issuer.transport
    )
    assert auth.keys.refresh(force=True)
    assert auth.revocations is not None
    auth.revocations.mark_heard()
    yield auth
    auth.stop()


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    """The fake issuer serving on a free loopback port."""
    with FakeIssuer() as fake:
        yield fake


@pytest.fixture
def client_secret(issuer: FakeIssuer) -> str:
    """The secret of the service client ``orders`` registered at the fake issuer."""
    return issuer.state.register_client(
        "orders", scopes={"catalog:read"}, audiences=["orders", "catalog"]
    )


def live_config(issuer: FakeIssuer, secret: str, **overrides: Any) -> ServiceConfig:
    """A config for a service ``orders`` trusting the fake issuer."""
    values: dict[str, Any] = {
        "issuer": issuer.url,
        "audience": "orders",
        "client_id": "orders",
        "client_secret": secret,
        "max_feed_staleness": 1.0,
        "feed_backoff_initial": 0.05,
        "feed_backoff_max": 0.3,
    }
    values.update(overrides)
    return ServiceConfig(**values)


def wait_for(predicate: Any, timeout: float = 5.0, interval: float = 0.01) -> float:
    """Poll until ``predicate()`` is true; returns the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
    return time.monotonic() - start
