"""Flask extension and plain WSGI middleware in process."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from unittest.mock import ANY

import pytest
from werkzeug.test import Client

from authmesh.revocation import RevocationEvent
from authmesh.service import ServiceAuth
from authmesh.service.flask import AuthMesh
from authmesh.service.wsgi import ENVIRON_KEY, BearerAuthWSGIMiddleware
from support.apps import flask_app
from support.challenges import parse_challenge
from support.sdk import MockIssuer


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(mock_auth: ServiceAuth) -> Any:
    app, _ = flask_app(mock_auth, start=False)
    return app.test_client()


def test_valid_token(client: Any, mock_issuer: MockIssuer) -> None:
    response = client.get("/me", headers=bearer(mock_issuer.state.mint(roles=["clerk"])))
    assert response.status_code == 200
    assert response.json == {
        "sub": "user-1",
        "client_id": "web",
        "roles": ["clerk"],
        "scopes": [],
        "sid": "session-1",
        "jti": ANY,
    }


def test_no_token(client: Any) -> None:
    response = client.get("/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="orders"'
    assert response.json["error"] == "unauthorized"
    assert client.get("/public").json == {"user": None}


@pytest.mark.parametrize("path", ["/me", "/public"])
def test_bad_token(client: Any, mock_issuer: MockIssuer, path: str) -> None:
    response = client.get(path, headers=bearer(mock_issuer.state.mint(lifetime=-3600)))
    assert response.status_code == 401
    params = parse_challenge(response.headers["WWW-Authenticate"])
    assert params["error"] == "invalid_token"
    assert params["error_description"] == "the token has expired"
    assert response.json == {"error": "invalid_token", "error_description": "the token has expired"}


def test_malformed_header(client: Any) -> None:
    response = client.get("/me", headers={"Authorization": "Bearer"})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_request"


def test_roles_and_scopes(client: Any, mock_issuer: MockIssuer) -> None:
    clerk = mock_issuer.state.mint(roles=["clerk"])
    response = client.get("/admin", headers=bearer(clerk))
    assert response.status_code == 403
    assert parse_challenge(response.headers["WWW-Authenticate"])["error"] == "insufficient_scope"
    response = client.post("/orders", headers=bearer(clerk))
    assert response.status_code == 403
    assert parse_challenge(response.headers["WWW-Authenticate"])["scope"] == "orders:write"
    boss = mock_issuer.state.mint(roles=["admin"], scope="orders:write", sid="s2")
    assert client.get("/admin", headers=bearer(boss)).status_code == 200
    assert client.post("/orders", headers=bearer(boss)).json == {"created_by": "user-1"}


def test_revoked(client: Any, mock_issuer: MockIssuer, mock_auth: ServiceAuth) -> None:
    token = mock_issuer.state.mint(sub="carol")
    assert client.get("/me", headers=bearer(token)).status_code == 200
    assert mock_auth.revocations is not None
    mock_auth.revocations.apply(
        RevocationEvent(kind="sub", value="carol", not_before=9e9 - 1, expires_at=9e9)
    )
    response = client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json["error_description"] == "the token has been revoked: sign in again"


def test_a_stale_feed_is_503_with_retry_after(
    client: Any, mock_issuer: MockIssuer, mock_auth: ServiceAuth
) -> None:
    assert mock_auth.revocations is not None
    mock_auth.revocations.last_heard -= 60
    response = client.get("/me", headers=bearer(mock_issuer.state.mint(sub="stale")))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert "WWW-Authenticate" not in response.headers
    assert response.json["error"] == "temporarily_unavailable"
    wsgi = Client(BearerAuthWSGIMiddleware(hello, mock_auth))
    response = wsgi.get("/", headers=bearer(mock_issuer.state.mint(sub="stale")))
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    assert json.loads(response.data)["error"] == "temporarily_unavailable"


def test_needs_a_config() -> None:
    with pytest.raises(TypeError):
        AuthMesh(None, None)


def hello(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    principal = environ[ENVIRON_KEY]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"user": principal.subject if principal else None}).encode()]


@pytest.mark.parametrize("required", [False, True], ids=["optional", "required"])
def test_wsgi_middleware(mock_auth: ServiceAuth, mock_issuer: MockIssuer, required: bool) -> None:
    client = Client(BearerAuthWSGIMiddleware(hello, mock_auth, required=required))
    response = client.get("/", headers=bearer(mock_issuer.state.mint(sub="dave")))
    assert response.json == {"user": "dave"}
    response = client.get("/")
    assert response.status_code == (401 if required else 200)
    response = client.get("/", headers={"Authorization": "Bearer x.y.z"})
    assert response.status_code == 401
    assert response.headers["Content-Length"] == str(len(response.data))
    assert json.loads(response.data)["error"] == "invalid_token"
