"""Every adapter's entry point, ``install(app, config_or_auth)``: a config or a ready auth."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask, g
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from werkzeug.test import Client

from authmesh.service import ServiceAuth
from authmesh.service import fastapi as fastapi_adapter
from authmesh.service import flask as flask_adapter
from authmesh.service import starlette as starlette_adapter
from authmesh.service import strawberry as strawberry_adapter
from authmesh.service import wsgi as wsgi_adapter
from support.sdk import MockIssuer, mock_config


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_install_builds_a_service_auth_from_a_config() -> None:
    config = mock_config()
    app = FastAPI()
    auth = fastapi_adapter.install(app, config, lifespan=False)
    assert isinstance(auth, ServiceAuth)
    assert auth.config is config
    assert app.state.authmesh is auth


def test_install_rejects_anything_else() -> None:
    with pytest.raises(TypeError, match="ServiceConfig or a ServiceAuth"):
        starlette_adapter.install(Starlette(), "https://auth.example.com")  # type: ignore[arg-type]


def test_find_auth_returns_what_install_stored() -> None:
    app = Starlette()
    auth = starlette_adapter.install(app, mock_config(), lifespan=False)
    assert starlette_adapter.find_auth(HTTPConnection({"type": "http", "app": app})) is auth


@pytest.mark.parametrize(
    "scope",
    [{"type": "http", "app": Starlette()}, {"type": "http"}],
    ids=["app-without-install", "no-app-in-scope"],
)
def test_find_auth_without_install_says_how_to_set_it_up(scope: dict[str, Any]) -> None:
    with pytest.raises(RuntimeError, match=r"call install\(app, config_or_auth\)"):
        starlette_adapter.find_auth(HTTPConnection(scope))


@pytest.mark.parametrize(
    "install",
    [fastapi_adapter.install, strawberry_adapter.install, starlette_adapter.install],
    ids=["fastapi", "strawberry", "starlette"],
)
async def test_asgi_install(install: Any, mock_auth: ServiceAuth, mock_issuer: MockIssuer) -> None:
    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.auth.subject if request.auth else None})

    app = Starlette(routes=[Route("/me", me)])
    assert install(app, mock_auth, lifespan=False) is mock_auth
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
        token = mock_issuer.state.mint(sub="erin")
        assert (await client.get("/me", headers=bearer(token))).json() == {"user": "erin"}
        assert (await client.get("/me")).json() == {"user": None}
        response = await client.get("/me", headers={"Authorization": "Bearer x.y.z"})
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"
    await mock_auth.http.aclose()


def hello(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    principal = environ[wsgi_adapter.ENVIRON_KEY]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"user": principal.subject if principal else None}).encode()]


def test_wsgi_install(mock_auth: ServiceAuth, mock_issuer: MockIssuer) -> None:
    app = wsgi_adapter.install(hello, mock_auth, required=True, start=False)
    assert app.auth is mock_auth
    client = Client(app)
    response = client.get("/", headers=bearer(mock_issuer.state.mint(sub="frank")))
    assert response.json == {"user": "frank"}
    assert client.get("/").status_code == 401


def test_wsgi_install_from_a_config() -> None:
    app = wsgi_adapter.install(hello, mock_config(), start=False)
    assert isinstance(app.auth, ServiceAuth)


def test_flask_install(mock_auth: ServiceAuth, mock_issuer: MockIssuer) -> None:
    app = Flask("install")
    ext = flask_adapter.install(app, mock_auth, start=False)
    assert isinstance(ext, flask_adapter.AuthMesh)
    assert ext.auth is mock_auth
    assert app.extensions["authmesh"] is ext

    @app.get("/me")
    @ext.required
    def me() -> dict[str, Any]:
        return {"user": g.principal.subject}

    client = app.test_client()
    response = client.get("/me", headers=bearer(mock_issuer.state.mint(sub="grace")))
    assert response.json == {"user": "grace"}
    assert client.get("/me").status_code == 401


def test_flask_install_from_a_config() -> None:
    ext = flask_adapter.install(Flask("install"), mock_config(), start=False)
    assert isinstance(ext.auth, ServiceAuth)
