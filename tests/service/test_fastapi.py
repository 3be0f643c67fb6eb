"""FastAPI and Starlette adapters in process: RFC 6750 answers, with and without the middleware."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from unittest.mock import ANY

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authmesh.revocation import RevocationEvent
from authmesh.service import Principal, ServiceAuth
from authmesh.service.fastapi import authenticated, require
from authmesh.service.starlette import BearerAuthMiddleware, install_error_handlers
from support.apps import fastapi_app
from support.challenges import parse_challenge
from support.sdk import MockIssuer


@pytest.fixture(params=[True, False], ids=["middleware", "dependencies-only"])
async def client(
    request: pytest.FixtureRequest, mock_auth: ServiceAuth
) -> AsyncIterator[httpx.AsyncClient]:
    app = fastapi_app(mock_auth, middleware=request.param)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as c:
        yield c
    await mock_auth.http.aclose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_valid_token(client: httpx.AsyncClient, mock_issuer: MockIssuer) -> None:
    token = mock_issuer.state.mint(sub="alice", roles=["clerk"])
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {
        "sub": "alice",
        "client_id": "web",
        "roles": ["clerk"],
        "scopes": [],
        "sid": "session-1",
        "jti": ANY,
    }


async def test_no_token_is_401_without_error_code(client: httpx.AsyncClient) -> None:
    response = await client.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="orders"'
    assert response.json()["error"] == "unauthorized"
    assert (await client.get("/public")).json() == {"user": None}


@pytest.mark.parametrize("path", ["/me", "/public"])
async def test_bad_token_is_401_invalid_token_even_on_public_paths(
    client: httpx.AsyncClient, mock_issuer: MockIssuer, path: str
) -> None:
    token = mock_issuer.state.mint(audience="billing")
    response = await client.get(path, headers=bearer(token))
    assert response.status_code == 401
    params = parse_challenge(response.headers["www-authenticate"])
    assert params == {
        "realm": "orders",
        "error": "invalid_token",
        "error_description": "the token is not meant for this audience",
    }
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "the token is not meant for this audience",
    }
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer a b", "Basic dXNlcjpwYXNz"], ids=["no-token", "two", "basic"]
)
async def test_malformed_header_is_401_invalid_request(
    client: httpx.AsyncClient, header: str
) -> None:
    response = await client.get("/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert parse_challenge(response.headers["www-authenticate"])["error"] == "invalid_request"
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("template", "status", "error"),
    [
        ("Bearer {t}", 200, None),
        ("bearer {t}", 200, None),
        ("Bearer  {t}", 200, None),
        ("Bearer {t}\t", 200, None),
        ("Bearer {t} {t}", 401, "invalid_request"),
        ("Bearer {t} x", 401, "invalid_request"),
        ("Basic {t}", 401, "invalid_request"),
        ("Bearer\t{t}", 200, None),
        ("Bearer {t}x", 401, "invalid_token"),
    ],
    ids=["plain", "lower", "two-spaces", "tab-after", "twice", "extra", "basic", "tab", "longer"],
)
async def test_header_of_a_known_token_is_parsed_as_any_other(
    client: httpx.AsyncClient, mock_issuer: MockIssuer, template: str, status: int, error: str
) -> None:
    # The token is verified first, so each header below meets it in the verified cache.
    token = mock_issuer.state.mint(sub="known")
    assert (await client.get("/me", headers=bearer(token))).status_code == 200
    response = await client.get("/me", headers={"Authorization": template.format(t=token)})
    assert response.status_code == status
    if error is not None:
        assert parse_challenge(response.headers["www-authenticate"])["error"] == error


async def test_two_headers_with_a_known_token_are_refused(
    client: httpx.AsyncClient, mock_issuer: MockIssuer
) -> None:
    token = mock_issuer.state.mint(sub="known")
    assert (await client.get("/me", headers=bearer(token))).status_code == 200
    twice = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    response = await client.get("/me", headers=twice)
    assert response.status_code == 401
    assert response.json()["error_description"] == "send a single Authorization header"


async def test_missing_role_or_scope_is_403(
    client: httpx.AsyncClient, mock_issuer: MockIssuer
) -> None:
    clerk = mock_issuer.state.mint(roles=["clerk"], scope="orders:read")
    response = await client.get("/admin", headers=bearer(clerk))
    assert response.status_code == 403
    params = parse_challenge(response.headers["www-authenticate"])
    assert params["error"] == "insufficient_scope" and "scope" not in params
    assert response.json()["error_description"] == "the token lacks the required role admin"

    response = await client.post("/orders", headers=bearer(clerk))
    assert response.status_code == 403
    assert parse_challenge(response.headers["www-authenticate"])["scope"] == "orders:write"

    admin = mock_issuer.state.mint(roles=["admin"], scope="orders:write", sid="s2")
    assert (await client.get("/admin", headers=bearer(admin))).json() == {"admin": "user-1"}
    assert (await client.post("/orders", headers=bearer(admin))).status_code == 200


async def test_revoked_and_stale(
    client: httpx.AsyncClient, mock_issuer: MockIssuer, mock_auth: ServiceAuth
) -> None:
    token = mock_issuer.state.mint(sid="s-revoke-me")
    assert (await client.get("/me", headers=bearer(token))).status_code == 200
    state = mock_auth.revocations
    assert state is not None
    state.apply(RevocationEvent(kind="sid", value="s-revoke-me", not_before=0, expires_at=9e9))
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error_description"] == "the session of this token has ended"
    state.last_heard -= 60
    response = await client.get("/me", headers=bearer(mock_issuer.state.mint(sid="other")))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert "www-authenticate" not in response.headers
    assert response.json()["error"] == "temporarily_unavailable"
    assert "revocation feed unreachable" in response.json()["error_description"]
    health = (await client.get("/health")).json()
    assert health["status"] == "failing" and health["feed"]["stale"] is True


async def test_middleware_sets_scope_auth_and_user(
    mock_auth: ServiceAuth, mock_issuer: MockIssuer
) -> None:
    async def whoami(request: Request) -> JSONResponse:
        assert request.auth is request.user
        return JSONResponse({"user": request.user.display_name})

    app = Starlette(
        routes=[Route("/", whoami)],
        middleware=[Middleware(BearerAuthMiddleware, auth=mock_auth, required=True)],
    )
    install_error_handlers(app, mock_auth.realm)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as c:
        assert (await c.get("/")).status_code == 401
        response = await c.get("/", headers=bearer(mock_issuer.state.mint(sub="bob")))
        assert response.json() == {"user": "bob"}


async def test_websocket_with_a_bad_token_is_closed(
    mock_auth: ServiceAuth, mock_issuer: MockIssuer
) -> None:
    seen: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["user"].display_name)

    middleware = BearerAuthMiddleware(inner, mock_auth)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    def scope(token: str) -> dict[str, Any]:
        return {
            "type": "websocket",
            "path": "/ws",
            "headers": [(b"authorization", f"Bearer {token}".encode())],
        }

    await middleware(scope("x.y.z"), receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "unauthorized"}]
    assert seen == []
    await middleware(scope(mock_issuer.state.mint(sub="wendy")), receive, send)
    assert seen == ["wendy"]

    state = mock_auth.revocations
    assert state is not None
    state.last_heard -= 60  # a stale feed: "try again later", not a policy violation
    sent.clear()
    await middleware(scope(mock_issuer.state.mint(sub="vera")), receive, send)
    assert sent == [{"type": "websocket.close", "code": 1013, "reason": "try again later"}]
    assert seen == ["wendy"]


async def test_without_installed_handlers_status_and_challenge_still_hold(
    mock_auth: ServiceAuth, mock_issuer: MockIssuer
) -> None:
    app = FastAPI()
    app.state.authmesh = mock_auth  # no install(): default FastAPI error handling

    @app.get("/admin")
    async def admin(user: Principal = Depends(require(roles="admin"))) -> dict[str, Any]:
        return {}

    @app.get("/me")
    async def me(user: Principal = Depends(authenticated)) -> dict[str, Any]:
        return {}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as c:
        response = await c.get("/me")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="orders"'
        response = await c.get("/admin", headers=bearer(mock_issuer.state.mint()))
        assert response.status_code == 403
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
        assert json.loads(response.content)["detail"] == "the token lacks the required role admin"


async def test_not_set_up_is_an_operator_error(mock_issuer: MockIssuer) -> None:
    app = FastAPI()

    @app.get("/me")
    async def me(user: Principal = Depends(authenticated)) -> dict[str, Any]:
        return {}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://s") as c:
        assert (await c.get("/me")).status_code == 500
