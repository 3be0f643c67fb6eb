"""The SDK tests' issuers and configs: an in-memory issuer (no sockets) and live configs."""

from __future__ import annotations

import json
from typing import Any

import httpx

from authmesh.service import ServiceConfig
from authmesh.testing import FakeIssuer, IssuerState

__all__ = ["MOCK_ISSUER", "MockIssuer", "live_config", "mock_config"]

MOCK_ISSUER = "https://auth.test"


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
