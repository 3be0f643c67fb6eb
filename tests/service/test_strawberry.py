"""Strawberry permissions and context in process: GraphQL errors inside, HTTP 401 for bad tokens."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from authmesh.service import ServiceAuth
from authmesh.service.strawberry import FORBIDDEN, UNAUTHENTICATED, HasRole, HasScope
from support.apps import graphql_app
from support.sdk import MockIssuer


@pytest.fixture(params=[True, False], ids=["middleware", "context-getter-only"])
async def client(
    request: pytest.FixtureRequest, mock_auth: ServiceAuth
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=graphql_app(mock_auth, middleware=request.param))
    async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as c:
        yield c
    await mock_auth.http.aclose()


async def query(client: httpx.AsyncClient, q: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.post("/graphql", json={"query": q}, headers=headers)


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


async def test_public_field_needs_no_token(client: httpx.AsyncClient) -> None:
    response = await query(client, "{ hello }")
    assert response.json() == {"data": {"hello": "world"}}


async def test_authenticated_field(client: httpx.AsyncClient, mock_issuer: MockIssuer) -> None:
    response = await query(client, "{ me { sub } }", mock_issuer.state.mint(sub="erin"))
    assert response.json() == {"data": {"me": {"sub": "erin"}}}
    response = await query(client, "{ me { sub } }")
    assert response.status_code == 200
    assert codes(response.json()) == [UNAUTHENTICATED]
    response = await query(client, "{ adminReport }")
    assert codes(response.json()) == [UNAUTHENTICATED]


async def test_roles_and_scopes(client: httpx.AsyncClient, mock_issuer: MockIssuer) -> None:
    clerk = mock_issuer.state.mint(roles=["clerk"])
    body = (await query(client, "{ adminReport staffNote items }", clerk)).json()
    assert sorted(codes(body)) == [FORBIDDEN, FORBIDDEN]
    assert body["data"] == {"adminReport": None, "staffNote": "staff only", "items": None}
    messages = {e["path"][0]: e for e in body["errors"]}
    assert messages["adminReport"]["message"] == "the token lacks the required role admin"
    assert messages["adminReport"]["extensions"]["required_roles"] == ["admin"]
    assert messages["items"]["extensions"]["required_scopes"] == ["catalog:read"]
    boss = mock_issuer.state.mint(roles=["admin"], scope="catalog:read", sid="s2")
    body = (await query(client, "{ adminReport staffNote items }", boss)).json()
    assert body == {
        "data": {
            "adminReport": "secret numbers",
            "staffNote": "staff only",
            "items": ["apple", "pear"],
        }
    }


async def test_a_bad_token_is_refused_at_the_http_layer(
    client: httpx.AsyncClient, mock_issuer: MockIssuer
) -> None:
    response = await query(client, "{ hello }", mock_issuer.state.mint(audience="other"))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["error"] == "invalid_token"


async def test_a_stale_feed_is_503_at_the_http_layer(
    client: httpx.AsyncClient, mock_issuer: MockIssuer, mock_auth: ServiceAuth
) -> None:
    assert mock_auth.revocations is not None
    mock_auth.revocations.last_heard -= 60
    response = await query(client, "{ me { sub } }", mock_issuer.state.mint(sub="stale"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert "www-authenticate" not in response.headers
    assert response.json()["error"] == "temporarily_unavailable"


def test_permission_classes_are_memoized_with_distinct_names() -> None:
    assert HasRole("admin") is HasRole("admin")
    assert HasRole("admin") is not HasRole("clerk")
    assert HasRole("a-b").__name__ != HasRole("a_b").__name__
    assert HasScope("orders:read").__name__.startswith("HasScope_orders_read")
    with pytest.raises(ValueError):
        HasRole()


async def test_schema_logs_server_errors_but_not_auth_denials(
    mock_auth: ServiceAuth, mock_issuer: MockIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    import strawberry
    from strawberry.fastapi import GraphQLRouter

    from authmesh.service.fastapi import install
    from authmesh.service.strawberry import IsAuthenticated, Schema, context_getter

    @strawberry.type
    class Query:
        @strawberry.field(permission_classes=[IsAuthenticated, HasRole("admin")])
        def secret(self) -> str:
            return "s"

        @strawberry.field
        def broken(self) -> str:
            raise RuntimeError("a real bug")

    app = FastAPI()
    install(app, mock_auth)
    app.include_router(
        GraphQLRouter(Schema(query=Query), context_getter=context_getter()), prefix="/graphql"
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as c:
        with caplog.at_level(logging.ERROR, logger="strawberry.execution"):
            denied = await query(c, "{ secret }", mock_issuer.state.mint(roles=["clerk"]))
            anonymous = await query(c, "{ secret }")
            assert caplog.records == []
            broken = await query(c, "{ broken }", mock_issuer.state.mint())
    await mock_auth.http.aclose()
    assert codes(denied.json()) == [FORBIDDEN]
    assert codes(anonymous.json()) == [UNAUTHENTICATED]
    assert broken.json()["errors"][0]["message"] == "a real bug"
    assert [r.getMessage().splitlines()[0] for r in caplog.records] == ["a real bug"]
