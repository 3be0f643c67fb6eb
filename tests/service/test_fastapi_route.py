"""``AuthRoute``: the SDK's dependencies checked without FastAPI resolving them, same answers."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import fastapi.dependencies.utils
import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel

from authmesh.service import Principal, ServiceAuth
from authmesh.service.fastapi import (
    AuthRoute,
    CurrentPrincipal,
    authenticated,
    install,
    optional_principal,
    require,
)
from support.sdk import MockIssuer

READ = require(scopes="orders:read")
#: The class of the SDK's dependencies.
_Bearer = type(authenticated)


class Order(BaseModel):
    item: str
    quantity: int


def orders_app(auth: ServiceAuth) -> FastAPI:
    app = FastAPI()
    install(app, auth, middleware=False, lifespan=False)

    @app.get("/orders")
    async def orders(user: Principal = Depends(READ)) -> dict[str, Any]:
        return {"sub": user.subject}

    @app.post("/orders")
    async def place(order: Order, user: Principal = Depends(READ)) -> dict[str, Any]:
        return {"sub": user.subject, "item": order.item}

    @app.get("/sync")
    def sync_orders(user: Principal = Depends(READ)) -> dict[str, Any]:
        return {"sub": user.subject, "main": threading.current_thread() is threading.main_thread()}

    @app.get("/admin", dependencies=[Depends(require(roles="admin"))])
    async def admin(request: Request) -> dict[str, Any]:
        return {"sub": request.scope["auth"].subject}

    @app.get("/with-request/{n}")
    async def with_request(n: int, request: Request, user: CurrentPrincipal) -> dict[str, Any]:
        assert request.scope["auth"] is user
        return {"n": n, "sub": user.subject}

    @app.get("/maybe")
    async def maybe(user: Principal | None = Depends(optional_principal)) -> dict[str, Any]:
        return {"sub": user.subject if user else None}

    async def subject(user: CurrentPrincipal) -> str:
        return user.subject

    @app.get("/nested")
    async def nested(who: str = Depends(subject), user: Principal = Depends(READ)) -> Any:
        return {"who": who, "sub": user.subject}

    router = APIRouter(route_class=AuthRoute)

    @router.get("/routed")
    async def routed(user: CurrentPrincipal) -> dict[str, Any]:
        return {"sub": user.subject}

    app.include_router(router, prefix="/v1")
    return app


@pytest.fixture
def app(mock_auth: ServiceAuth) -> FastAPI:
    return orders_app(mock_auth)


@pytest.fixture
async def client(app: FastAPI, mock_auth: ServiceAuth) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as c:
        yield c
    await mock_auth.http.aclose()


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The SDK dependencies FastAPI's own machinery resolves during the test."""
    seen: list[Any] = []
    solve = fastapi.dependencies.utils.solve_dependencies

    async def recording(**kwargs: Any) -> Any:
        if isinstance(kwargs["dependant"].call, _Bearer):
            seen.append(kwargs["dependant"].call)
        return await solve(**kwargs)

    monkeypatch.setattr(fastapi.dependencies.utils, "solve_dependencies", recording)
    yield seen


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_route_checks_the_dependency_without_fastapi_resolving_it(
    client: httpx.AsyncClient, mock_issuer: MockIssuer, resolved: list[Any]
) -> None:
    token = mock_issuer.state.mint(sub="alice", scope="orders:read")
    answer = await client.get("/orders", headers=bearer(token))
    assert answer.status_code == 200
    assert answer.json() == {"sub": "alice"}
    assert resolved == []


async def test_the_answers_are_the_dependencys(
    client: httpx.AsyncClient, mock_issuer: MockIssuer, resolved: list[Any]
) -> None:
    missing = await client.get("/orders")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    bad = await client.get("/orders", headers=bearer("not.a.token"))
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    narrow = mock_issuer.state.mint(sub="alice", scope="profile")
    refused = await client.get("/orders", headers=bearer(narrow))
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert resolved == []


async def test_a_caller_without_a_token_learns_nothing_of_the_body_rules(
    client: httpx.AsyncClient, mock_issuer: MockIssuer
) -> None:
    assert (await client.post("/orders", json={"item": 3})).status_code == 401
    token = mock_issuer.state.mint(sub="alice", scope="orders:read")
    assert (
        await client.post("/orders", json={"item": 3}, headers=bearer(token))
    ).status_code == 422
    placed = await client.post(
        "/orders", json={"item": "tea", "quantity": 2}, headers=bearer(token)
    )
    assert placed.json() == {"sub": "alice", "item": "tea"}


async def test_a_plain_def_endpoint_gets_the_principal_in_the_thread_pool(
    client: httpx.AsyncClient, mock_issuer: MockIssuer
) -> None:
    token = mock_issuer.state.mint(sub="bob", scope="orders:read")
    assert (await client.get("/sync", headers=bearer(token))).json() == {
        "sub": "bob",
        "main": False,
    }


async def test_a_route_level_dependency_guards_the_route(
    client: httpx.AsyncClient, mock_issuer: MockIssuer, resolved: list[Any]
) -> None:
    clerk = mock_issuer.state.mint(sub="carol", roles=["clerk"])
    admin = mock_issuer.state.mint(sub="dan", roles=["admin"])
    assert (await client.get("/admin", headers=bearer(clerk))).status_code == 403
    assert (await client.get("/admin", headers=bearer(admin))).json() == {"sub": "dan"}
    assert resolved == []


async def test_the_endpoints_own_request_and_path_parameters_are_kept(
    client: httpx.AsyncClient, mock_issuer: MockIssuer
) -> None:
    token = mock_issuer.state.mint(sub="erin")
    assert (await client.get("/with-request/7", headers=bearer(token))).json() == {
        "n": 7,
        "sub": "erin",
    }
    assert (await client.get("/with-request/x", headers=bearer(token))).status_code == 422


async def test_the_optional_principal_is_none_without_a_token_and_a_bad_token_still_fails(
    client: httpx.AsyncClient, mock_issuer: MockIssuer
) -> None:
    assert (await client.get("/maybe")).json() == {"sub": None}
    assert (await client.get("/maybe", headers=bearer("bad"))).status_code == 401
    token = mock_issuer.state.mint(sub="fay")
    assert (await client.get("/maybe", headers=bearer(token))).json() == {"sub": "fay"}


async def test_nested_uses_and_included_routers_keep_fastapis_resolution(
    client: httpx.AsyncClient, mock_issuer: MockIssuer
) -> None:
    token = mock_issuer.state.mint(sub="gus", scope="orders:read")
    assert (await client.get("/nested", headers=bearer(token))).json() == {
        "who": "gus",
        "sub": "gus",
    }
    assert (await client.get("/v1/routed", headers=bearer(token))).json() == {"sub": "gus"}
    assert (await client.get("/v1/routed")).status_code == 401


async def test_dependency_overrides_still_replace_the_dependency(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    claims = {"sub": "tester", "aud": "orders", "scope": "orders:read", "client_id": "web"}
    stand_in = Principal.from_claims({**claims, "jti": "j", "iat": 0, "exp": 1}, "token")
    app.dependency_overrides[READ] = lambda: stand_in
    app.dependency_overrides[optional_principal] = lambda: stand_in
    assert (await client.get("/orders")).json() == {"sub": "tester"}
    assert (await client.get("/maybe")).json() == {"sub": "tester"}
    app.dependency_overrides.clear()
    assert (await client.get("/orders")).status_code == 401


def test_the_openapi_document_still_shows_the_bearer_scheme(app: FastAPI) -> None:
    document = app.openapi()
    assert document["paths"]["/orders"]["get"]["security"] == [{"bearer": []}]
    assert "bearer" in document["components"]["securitySchemes"]


def test_install_leaves_a_custom_route_class_alone(mock_auth: ServiceAuth) -> None:
    class Custom(AuthRoute):
        pass

    app = FastAPI()
    app.router.route_class = Custom
    install(app, mock_auth, middleware=False, lifespan=False)
    assert app.router.route_class is Custom
