"""Token exchange end to end: orders calls catalog for alice, catalog sees alice acting through
orders, and blocking alice ends the exchanged token in catalog within a second.

The real auth server, two real FastAPI services on loopback ports, the SDK's
:class:`TokenExchanger` in orders, ``require(delegation=…, actors=…)`` in catalog.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from authmesh.server import clients
from authmesh.service import Principal, ServiceAuth, TokenExchanger
from authmesh.service.fastapi import install, require
from authmesh.testing import UvicornThread, wait_for
from support.acceptance import service_config
from support.databases import db_target
from support.harness import Api, launch

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def catalog_app(auth: ServiceAuth) -> FastAPI:
    app = FastAPI()
    install(app, auth)

    @app.get("/for-user")
    async def for_user(
        user: Principal = Depends(require(delegation="require", actors="orders-x")),
    ) -> dict[str, Any]:
        return {"sub": user.subject, "actor": user.actor, "chain": list(user.actor_chain)}

    @app.get("/own-calls-only")
    async def own(user: Principal = Depends(require(delegation="refuse"))) -> dict[str, str]:
        return {"sub": user.subject}

    return app


def orders_app(auth: ServiceAuth, exchanger: TokenExchanger, catalog_url: str) -> FastAPI:
    app = FastAPI()
    install(app, auth)

    @app.get("/price")
    async def price(user: Principal = Depends(require(scopes="orders:read"))) -> Any:
        async with httpx.AsyncClient(auth=exchanger.for_user(user), timeout=5) as client:
            answer = await client.get(f"{catalog_url}/for-user")
        return {"status": answer.status_code, "catalog_saw": answer.json()}

    return app


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with db_target("sqlite", tmp_path_factory.mktemp("delegation")) as target:
        api = launch(target)
        made = api.server.call(
            clients.register_client(
                api.core,
                client_id="orders-x",
                grant_types=["client_credentials", TOKEN_EXCHANGE],
                scopes=["catalog:read"],
                audiences=["catalog"],
                serves=["orders"],
            )
        )
        assert made.secret is not None
        with contextlib.ExitStack() as stack:
            catalog_auth = ServiceAuth(
                service_config(api.url, api.service_secret, audience="catalog")
            )
            catalog = stack.enter_context(UvicornThread(catalog_app(catalog_auth)))
            orders_config = service_config(
                api.url, made.secret, audience="orders", client_id="orders-x"
            )
            exchanger = TokenExchanger(orders_config, audience="catalog", scope="catalog:read")
            stack.callback(exchanger.close)
            orders = stack.enter_context(
                UvicornThread(orders_app(ServiceAuth(orders_config), exchanger, catalog.url))
            )
            yield {"api": api, "catalog": catalog.url, "orders": orders.url, "exchanger": exchanger}
        api.close()
        api.server.stop()


def _alice(api: Api, audience: str = "orders") -> str:
    return _signed_in(api, audience)[1]


def _signed_in(api: Api, audience: str = "orders") -> tuple[str, str]:
    """A fresh user's name and access token."""
    name, password = api.new_user()
    body = api.login(name, password, scope="orders:read catalog:read", audience=audience)
    return name, str(body["access_token"])


def test_catalog_sees_the_user_acting_through_orders(stack: dict[str, Any]) -> None:
    api: Api = stack["api"]
    token = _alice(api)
    before = stack["exchanger"].exchanges

    first = httpx.get(f"{stack['orders']}/price", headers=api.bearer(token), timeout=10).json()
    again = httpx.get(f"{stack['orders']}/price", headers=api.bearer(token), timeout=10).json()

    sub = api.introspect(token)["sub"]
    assert first == {
        "status": 200,
        "catalog_saw": {"sub": sub, "actor": "orders-x", "chain": ["orders-x"]},
    }
    assert again == first
    assert stack["exchanger"].exchanges == before + 1  # cached for the second call


def test_the_users_own_token_is_refused_where_delegation_is_required(stack: dict[str, Any]) -> None:
    api: Api = stack["api"]
    own = _alice(api, audience="catalog")

    response = httpx.get(f"{stack['catalog']}/for-user", headers=api.bearer(own), timeout=10)

    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    ok = httpx.get(f"{stack['catalog']}/own-calls-only", headers=api.bearer(own), timeout=10)
    assert ok.status_code == 200


def test_an_exchanged_token_is_refused_where_delegation_is_refused(stack: dict[str, Any]) -> None:
    api: Api = stack["api"]
    exchanged = stack["exchanger"].exchange(_alice(api))

    response = httpx.get(
        f"{stack['catalog']}/own-calls-only", headers=api.bearer(exchanged), timeout=10
    )

    assert response.status_code == 403


def test_blocking_the_user_ends_the_exchanged_token_in_catalog(stack: dict[str, Any]) -> None:
    api: Api = stack["api"]
    name, token = _signed_in(api)
    exchanged = stack["exchanger"].exchange(token)
    url = f"{stack['catalog']}/for-user"
    assert httpx.get(url, headers=api.bearer(exchanged), timeout=10).status_code == 200

    assert api.admin("POST", f"/admin/users/{name}/block").status_code == 200

    took = wait_for(
        lambda: httpx.get(url, headers=api.bearer(exchanged), timeout=10).status_code == 401,
        timeout=3,
    )
    print(f"block -> exchanged token refused by catalog in {took * 1000:.0f} ms")
    assert took < 1.0
