"""``mount_operations``: /healthz, /readyz and /metrics over real HTTP in every adapter.

The probes answer without a token even where the app requires one everywhere else."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import strawberry
from fastapi import FastAPI
from flask import Flask
from starlette.applications import Starlette
from strawberry.fastapi import GraphQLRouter

from authmesh.errors import ConfigError
from authmesh.service import ServiceAuth
from authmesh.service import fastapi as fastapi_adapter
from authmesh.service import flask as flask_adapter
from authmesh.service import starlette as starlette_adapter
from authmesh.service import strawberry as strawberry_adapter
from authmesh.service import wsgi as wsgi_adapter
from authmesh.service.operations import operation_paths, readiness
from authmesh.testing import FakeClock, FakeIssuer, UvicornThread, WerkzeugThread
from authmesh.testing.issuer import bearer


def _starlette(auth: ServiceAuth) -> Any:
    app = Starlette()
    starlette_adapter.install(app, auth, lifespan=False)
    starlette_adapter.mount_operations(app, auth)
    return UvicornThread(app)


def _fastapi(auth: ServiceAuth) -> Any:
    app = FastAPI()
    # Every request needs a token, but not the probes.
    fastapi_adapter.install(app, auth, lifespan=False, required=True)
    fastapi_adapter.mount_operations(app, auth)
    return UvicornThread(app)


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "hello"


def _strawberry(auth: ServiceAuth) -> Any:
    app = FastAPI()
    strawberry_adapter.install(app, auth, lifespan=False)
    strawberry_adapter.mount_operations(app)  # the auth install put on the app
    schema = strawberry_adapter.Schema(query=Query)
    app.include_router(
        GraphQLRouter(schema, context_getter=strawberry_adapter.context_getter()),
        prefix="/graphql",
    )
    return UvicornThread(app)


def _flask(auth: ServiceAuth) -> Any:
    app = Flask(__name__)
    extension = flask_adapter.install(app, auth, start=False)
    flask_adapter.mount_operations(app, extension)
    return WerkzeugThread(app)


def _wsgi(auth: ServiceAuth) -> Any:
    def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    app = wsgi_adapter.install(hello, auth, start=False, required=True)
    return WerkzeugThread(wsgi_adapter.mount_operations(app))


ADAPTERS: dict[str, Callable[[ServiceAuth], Any]] = {
    "starlette": _starlette,
    "fastapi": _fastapi,
    "strawberry": _strawberry,
    "flask": _flask,
    "wsgi": _wsgi,
}


@contextmanager
def _serving(make: Callable[[ServiceAuth], Any], auth: ServiceAuth) -> Iterator[httpx.Client]:
    server = make(auth).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client
    finally:
        server.stop()
        auth.stop()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_readyz_follows_the_keys_and_the_feed(issuer: FakeIssuer, adapter: str) -> None:
    monotonic = FakeClock()
    auth = ServiceAuth(issuer.service_config("orders"), monotonic=monotonic)
    with _serving(ADAPTERS[adapter], auth) as client:
        assert client.get("/healthz").json() == {"status": "alive"}
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["cache-control"] == "no-store"
        assert response.json()["not_ready"] == ["jwks"]
        assert response.json()["checks"]["revocation_feed"] == "fresh"

        monotonic.advance(auth.config.max_feed_staleness.total_seconds() + 1)
        body = client.get("/readyz").json()
        assert body["status"] == "not_ready"
        assert body["not_ready"] == ["jwks", "revocation_feed"]
        assert body["checks"]["revocation_feed"].startswith("stale, silent for 11.0 s")

        # Keys fetched and the feed followed: ready.
        auth.start(wait=5)
        response = client.get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json() == {
            "status": "ready",
            "checks": {"jwks": "loaded", "revocation_feed": "fresh"},
        }
        assert client.get("/healthz").status_code == 200

        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "authmesh_service_jwks_fetches_total 1.0" in metrics.text
        assert "authmesh_service_feed_stale 0.0" in metrics.text


def test_probes_pass_a_required_token_and_the_app_still_needs_one(issuer: FakeIssuer) -> None:
    auth = ServiceAuth(issuer.service_config("orders"))
    with _serving(_fastapi, auth) as client:
        auth.start(wait=5)
        assert client.get("/readyz").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/other").status_code == 401
        token = issuer.mint(sub="alice", audience="orders")
        assert client.get("/other", headers=bearer(token)).status_code == 404
        # The probes are not part of the API document.
        assert "/readyz" not in client.get("/openapi.json", headers=bearer(token)).text


def test_a_fail_open_service_stays_ready_on_a_stale_feed(issuer: FakeIssuer) -> None:
    monotonic = FakeClock()
    auth = ServiceAuth(issuer.service_config("orders", fail_open=True), monotonic=monotonic)
    try:
        assert auth.keys.refresh(force=True)
        monotonic.advance(60)
        probe = readiness(auth)
    finally:
        auth.stop()
    assert probe.status == 200
    assert "tokens accepted: fail_open" in probe.body["checks"]["revocation_feed"]


def test_prefix_and_metrics_off(issuer: FakeIssuer) -> None:
    assert operation_paths("/ops/") == ("/ops/healthz", "/ops/readyz", "/ops/metrics")
    with pytest.raises(ConfigError, match="start with '/'"):
        operation_paths("ops")
    auth = ServiceAuth(issuer.service_config("orders"))
    app = Flask(__name__)
    flask_adapter.mount_operations(app, auth, prefix="/ops", metrics=False)
    with _serving(lambda _auth: WerkzeugThread(app), auth) as client:
        assert client.get("/ops/healthz").status_code == 200
        assert client.get("/ops/readyz").status_code == 503
        assert client.get("/ops/metrics").status_code == 404
        assert client.get("/healthz").status_code == 404


def test_mounting_before_install_is_refused() -> None:
    with pytest.raises(RuntimeError, match="install"):
        starlette_adapter.mount_operations(Starlette())
    with pytest.raises(RuntimeError, match="install"):
        flask_adapter.mount_operations(Flask(__name__))
    with pytest.raises(RuntimeError, match="install"):
        wsgi_adapter.mount_operations(lambda environ, start_response: [])
