"""Step-up (RFC 9470): ``require(acr=..., max_age=...)`` in every adapter answers
401 ``insufficient_user_authentication`` with ``acr_values``/``max_age`` to step up."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import strawberry
from fastapi import Depends, FastAPI
from flask import Flask, g
from strawberry.fastapi import GraphQLRouter

from authmesh.acr import acr_for_amr, satisfies
from authmesh.service import InsufficientUserAuthentication, Principal, ServiceAuth
from authmesh.service.fastapi import install, protected, require
from authmesh.service.flask import AuthMesh
from authmesh.service.principal import AccessRule, check_access
from authmesh.service.strawberry import (
    INSUFFICIENT_USER_AUTHENTICATION,
    RecentSignIn,
    context_getter,
)
from support.challenges import parse_challenge
from support.sdk import MockIssuer


def _token(issuer: MockIssuer, *, acr: str | None, age: float, **extra: Any) -> str:
    claims: dict[str, Any] = {"auth_time": int(time.time() - age), **extra}
    if acr is not None:
        claims["acr"] = acr
    return issuer.state.mint(roles=["clerk"], **claims)


def test_acr_levels_follow_the_methods() -> None:
    assert acr_for_amr(["pwd"]) == "pwd"
    assert acr_for_amr(["pwd", "otp"]) == "mfa"
    assert acr_for_amr(["hwk", "user"]) == "mfa"
    assert acr_for_amr(["hwk"]) == "pwd"
    assert satisfies("mfa", ["pwd"]) and not satisfies("pwd", ["mfa"])
    assert not satisfies(None, ["pwd"]) and not satisfies("gold", ["mfa"])


def test_rule_checks_roles_before_the_sign_in(mock_issuer: MockIssuer) -> None:
    principal = Principal.from_claims(
        {
            "sub": "u",
            "client_id": "web",
            "jti": "j",
            "iat": 1,
            "exp": 2,
            "aud": "orders",
            "roles": [],
            "acr": "pwd",
            "auth_time": 1,
        },
        "t",
    )
    with pytest.raises(Exception) as caught:
        check_access(principal, roles="admin", acr="mfa")
    assert type(caught.value).__name__ == "InsufficientScope"
    with pytest.raises(InsufficientUserAuthentication) as weak:
        AccessRule.of(acr="mfa", max_age=300).check(principal, now=100)
    assert weak.value.acr_values == ("mfa",) and weak.value.max_age == 300
    with pytest.raises(ValueError):
        AccessRule.of(max_age=-1)


def _fastapi(auth: ServiceAuth) -> FastAPI:
    app = FastAPI()
    install(app, auth)

    @app.get("/transfer")
    async def transfer(
        user: Principal = Depends(require(acr="mfa", max_age=300)),
    ) -> dict[str, Any]:
        return {"by": user.subject, "acr": user.acr}

    @app.get("/recent")
    @protected(max_age=60)
    async def recent(user: Principal) -> dict[str, Any]:
        return {"by": user.subject}

    return app


@pytest.fixture
async def fastapi_client(mock_auth: ServiceAuth) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_fastapi(mock_auth))
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
        yield client
    await mock_auth.http.aclose()


def _assert_step_up(response: Any, *, acr: str | None, max_age: str | None) -> None:
    assert response.status_code == 401
    params = parse_challenge(response.headers["WWW-Authenticate"])
    assert params["error"] == "insufficient_user_authentication"
    assert params.get("acr_values") == acr
    assert params.get("max_age") == max_age
    body = response.json() if callable(response.json) else response.json
    assert body["error"] == "insufficient_user_authentication"


async def test_fastapi_require_asks_for_a_stronger_sign_in(
    fastapi_client: httpx.AsyncClient, mock_issuer: MockIssuer
) -> None:
    weak = _token(mock_issuer, acr="pwd", age=10)
    response = await fastapi_client.get("/transfer", headers={"Authorization": f"Bearer {weak}"})
    _assert_step_up(response, acr="mfa", max_age="300")
    old = _token(mock_issuer, acr="mfa", age=900)
    response = await fastapi_client.get("/transfer", headers={"Authorization": f"Bearer {old}"})
    _assert_step_up(response, acr="mfa", max_age="300")
    good = _token(mock_issuer, acr="mfa", age=10)
    response = await fastapi_client.get("/transfer", headers={"Authorization": f"Bearer {good}"})
    assert response.status_code == 200 and response.json()["acr"] == "mfa"


async def test_fastapi_protected_asks_for_a_recent_sign_in(
    fastapi_client: httpx.AsyncClient, mock_issuer: MockIssuer
) -> None:
    old = _token(mock_issuer, acr=None, age=120)
    response = await fastapi_client.get("/recent", headers={"Authorization": f"Bearer {old}"})
    _assert_step_up(response, acr=None, max_age="60")
    fresh = _token(mock_issuer, acr=None, age=5)
    response = await fastapi_client.get("/recent", headers={"Authorization": f"Bearer {fresh}"})
    assert response.status_code == 200


def test_flask_require_asks_for_a_stronger_sign_in(
    mock_auth: ServiceAuth, mock_issuer: MockIssuer
) -> None:
    app = Flask("orders")
    ext = AuthMesh(app, mock_auth, start=False)

    @app.get("/transfer")
    @ext.require(acr="mfa", max_age=300)
    def transfer() -> dict[str, Any]:
        return {"by": g.principal.subject}

    client = app.test_client()
    weak = _token(mock_issuer, acr="pwd", age=10)
    response = client.get("/transfer", headers={"Authorization": f"Bearer {weak}"})
    _assert_step_up(response, acr="mfa", max_age="300")
    good = _token(mock_issuer, acr="mfa", age=10)
    assert client.get("/transfer", headers={"Authorization": f"Bearer {good}"}).status_code == 200


@strawberry.type
class _Query:
    @strawberry.field(permission_classes=[RecentSignIn("mfa", 300)])
    def payout(self) -> str | None:
        return "paid"


async def test_strawberry_permission_answers_rfc9470(
    mock_auth: ServiceAuth, mock_issuer: MockIssuer
) -> None:
    app = FastAPI()
    install(app, mock_auth)
    app.include_router(
        GraphQLRouter(strawberry.Schema(query=_Query), context_getter=context_getter()),
        prefix="/graphql",
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://catalog"
    ) as client:
        weak = _token(mock_issuer, acr="pwd", age=10)
        response = await client.post(
            "/graphql", json={"query": "{ payout }"}, headers={"Authorization": f"Bearer {weak}"}
        )
        assert response.status_code == 401
        params = parse_challenge(response.headers["WWW-Authenticate"])
        assert params["error"] == "insufficient_user_authentication"
        assert params["acr_values"] == "mfa" and params["max_age"] == "300"
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == INSUFFICIENT_USER_AUTHENTICATION
        assert error["extensions"]["acr_values"] == ["mfa"]
        good = _token(mock_issuer, acr="mfa", age=10)
        response = await client.post(
            "/graphql", json={"query": "{ payout }"}, headers={"Authorization": f"Bearer {good}"}
        )
        assert response.status_code == 200 and response.json()["data"] == {"payout": "paid"}
    await mock_auth.http.aclose()
