"""``protected``: the decorator form of ``require``, same answers, no FastAPI dependency."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from authmesh.service import Principal, ServiceAuth
from authmesh.service.fastapi import install, protected
from support.challenges import parse_challenge
from support.sdk import MockIssuer


def protected_app(auth: ServiceAuth, *, middleware: bool) -> FastAPI:
    app = FastAPI()
    install(app, auth, middleware=middleware, lifespan=False)

    @app.get("/me")
    @protected()
    async def me(user: Principal) -> dict[str, Any]:
        return {"sub": user.subject, "roles": sorted(user.roles)}

    @app.get("/orders/{order_id}")
    @protected(scopes="orders:read")
    async def order(order_id: int, request: Request, who: Principal, limit: int = 10) -> Any:
        assert request.scope["auth"] is who
        return {"order": order_id, "limit": limit, "sub": who.subject}

    @app.post("/admin")
    @protected(roles="admin")
    async def admin() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/sync")
    @protected(any_roles=["clerk", "admin"])
    def sync_endpoint(user: Principal) -> dict[str, Any]:
        # A plain def runs in the thread pool, as FastAPI would run it.
        return {
            "sub": user.subject,
            "main_thread": threading.current_thread() is threading.main_thread(),
        }

    return app


@pytest.fixture(params=[True, False], ids=["middleware", "decorator-only"])
async def client(
    request: pytest.FixtureRequest, mock_auth: ServiceAuth
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=protected_app(mock_auth, middleware=request.param))
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as c:
        yield c
    await mock_auth.http.aclose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_valid_token_reaches_the_endpoint(
    client: httpx.AsyncClient, mock_issuer: MockIssuer
) -> None:
    token = mock_issuer.state.mint(sub="alice", roles=["clerk"], scope="orders:read")
    assert (await client.get("/me", headers=bearer(token))).json() == {
        "sub": "alice",
        "roles": ["clerk"],
    }
    response = await client.get("/orders/7?limit=3", headers=bearer(token))
    assert response.json() == {"order": 7, "limit": 3, "sub": "alice"}
    response = await client.get("/sync", headers=bearer(token))
    assert response.json() == {"sub": "alice", "main_thread": False}


async def test_no_token_bad_token_and_missing_scope(
    client: httpx.AsyncClient, mock_issuer: MockIssuer
) -> None:
    missing = await client.get("/me")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="orders"'
    forged = mock_issuer.state.mint()[:-3] + "AAA"
    bad = await client.get("/me", headers=bearer(forged))
    assert bad.status_code == 401
    assert parse_challenge(bad.headers["www-authenticate"])["error"] == "invalid_token"
    clerk = mock_issuer.state.mint(roles=["clerk"], scope="")
    no_scope = await client.get("/orders/1", headers=bearer(clerk))
    assert no_scope.status_code == 403
    challenge = parse_challenge(no_scope.headers["www-authenticate"])
    assert challenge["error"] == "insufficient_scope" and challenge["scope"] == "orders:read"
    assert (await client.post("/admin", headers=bearer(clerk))).status_code == 403
    admin = mock_issuer.state.mint(roles=["admin"])
    assert (await client.post("/admin", headers=bearer(admin))).json() == {"ok": True}
    nobody = mock_issuer.state.mint(roles=[])
    assert (await client.get("/sync", headers=bearer(nobody))).status_code == 403


async def test_revoked_token_is_refused(
    client: httpx.AsyncClient, mock_issuer: MockIssuer, mock_auth: ServiceAuth
) -> None:
    token = mock_issuer.state.mint(sub="bob")
    assert (await client.get("/me", headers=bearer(token))).status_code == 200
    assert mock_auth.revocations is not None
    mock_auth.revocations.apply(mock_issuer.state.revoke("sub", "bob"))
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert parse_challenge(response.headers["www-authenticate"])["error"] == "invalid_token"


def test_openapi_shows_the_real_parameters_only(mock_auth: ServiceAuth) -> None:
    schema = protected_app(mock_auth, middleware=False).openapi()
    names = [p["name"] for p in schema["paths"]["/orders/{order_id}"]["get"]["parameters"]]
    assert names == ["order_id", "limit"]
    assert schema["paths"]["/me"]["get"].get("parameters", []) == []


def test_decorator_above_the_route_fails_at_start_up() -> None:
    # Above the route decorator, FastAPI would see the Principal parameter itself and
    # read it from the request body: a caller could send the principal of their choice.
    app = FastAPI()
    with pytest.raises(TypeError, match="never from the request"):

        @protected()
        @app.get("/me")
        async def me(user: Principal) -> dict[str, Any]:
            return {"sub": user.subject}

    assert [getattr(r, "path", None) for r in app.routes].count("/me") == 0
