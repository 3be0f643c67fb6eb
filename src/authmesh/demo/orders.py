"""The demo's **orders**: a REST service (FastAPI) protected by the SDK.

Users list and create their own orders (scopes ``orders:read`` /
``orders:write``); admins see every order. Creating an order calls catalog over
GraphQL twice, the two ways a service calls another:

- as itself, for the product's price, with orders' own client-credentials token
  (``priced_by``: catalog saw ``orders-svc``);
- for the user, with the user's token exchanged for one to catalog (RFC 8693):
  ``seen_for``, catalog saw the user acting through ``orders-svc``.
Run by ``authmesh demo`` as ``python -m authmesh.demo.orders``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, Field

from authmesh.demo.service_common import add_health, demo_facts, host_port, service_config
from authmesh.demo.storage import DemoStore
from authmesh.service import (
    ClientCredentialsAuth,
    Principal,
    ServiceAuth,
    TokenExchanger,
    TokenRequestError,
)
from authmesh.service.fastapi import install, require

__all__ = ["create_app", "main"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  owner TEXT NOT NULL,
  username TEXT,
  product_id TEXT NOT NULL,
  product_name TEXT NOT NULL,
  quantity INTEGER NOT NULL,
  unit_price REAL NOT NULL,
  total REAL NOT NULL,
  priced_by TEXT NOT NULL,
  created_at REAL NOT NULL,
  seen_for TEXT
);
CREATE INDEX IF NOT EXISTS orders_owner ON orders (owner);
"""
#: A data folder from before token exchange lacks the column.
_ADD_SEEN_FOR = "ALTER TABLE orders ADD COLUMN seen_for TEXT"
_PRICE_QUERY = "query($id: ID!) { product(id: $id) { id name price } viewer { clientId } }"
_VIEWER_QUERY = "{ viewer { subject username actor } }"
log = logging.getLogger(__name__)


class NewOrder(BaseModel):
    product_id: str = Field(min_length=1, max_length=40)
    quantity: int = Field(ge=1, le=100)


class Order(BaseModel):
    id: int
    owner: str
    username: str | None
    product_id: str
    product_name: str
    quantity: int
    unit_price: float
    total: float
    priced_by: str
    created_at: float
    seen_for: str | None = None


class CatalogClient:
    """Calls catalog's GraphQL API as the orders service itself, or for a user."""

    def __init__(self, url: str, auth: httpx.Auth, exchanger: TokenExchanger | None = None) -> None:
        self._http = httpx.AsyncClient(auth=auth, timeout=5.0)
        self._url = f"{url}/graphql"
        self._exchanger = exchanger

    async def seen_for(self, user: Principal) -> str | None:
        """Who catalog sees when orders calls it for ``user``: "alice via orders-svc".

        ``None`` when it cannot tell (no exchanger, or the exchange or call failed):
        the order does not depend on it.
        """
        if self._exchanger is None:
            return None
        try:
            response = await self._http.post(
                self._url, json={"query": _VIEWER_QUERY}, auth=self._exchanger.for_user(user)
            )
            viewer = response.json()["data"]["viewer"]
        except (httpx.HTTPError, TokenRequestError, ValueError, KeyError, TypeError) as exc:
            log.warning("catalog could not be asked for the user: %s", exc)
            return None
        return f"{viewer['username'] or viewer['subject']} via {viewer['actor']}"

    async def price(self, product_id: str) -> dict[str, Any] | None:
        """The product and the client id catalog saw, or ``None`` for an unknown product.

        Raises:
            HTTPException: 502 when catalog fails or refuses the service token.
        """
        try:
            response = await self._http.post(
                self._url, json={"query": _PRICE_QUERY, "variables": {"id": product_id}}
            )
        except httpx.HTTPError as exc:
            raise HTTPException(502, f"catalog is unreachable: {type(exc).__name__}") from None
        body = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        if response.status_code != 200 or body.get("errors") or not body.get("data"):
            raise HTTPException(502, f"catalog refused the price query ({response.status_code})")
        data = body["data"]
        if data["product"] is None:
            return None
        return {**data["product"], "priced_by": data["viewer"]["clientId"]}

    async def aclose(self) -> None:
        await self._http.aclose()


def create_app(auth: ServiceAuth, catalog: CatalogClient, data_dir: Path) -> FastAPI:
    """The orders app: ``/orders``, ``/admin/orders``, ``/healthz``."""
    store = DemoStore(data_dir / "orders.sqlite3", _SCHEMA)
    with contextlib.suppress(sqlite3.OperationalError):  # the column is there already
        store.execute(_ADD_SEEN_FOR)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await catalog.aclose()
            store.close()

    app = FastAPI(title="authmesh demo: orders (REST)", lifespan=lifespan)
    install(app, auth)
    add_health(app, auth)

    @app.get("/orders", response_model=list[Order])
    async def my_orders(user: Principal = Depends(require(scopes="orders:read"))) -> Any:
        return store.query("SELECT * FROM orders WHERE owner = ? ORDER BY id", (user.subject,))

    @app.post("/orders", response_model=Order, status_code=201)
    async def create_order(
        order: NewOrder, user: Principal = Depends(require(scopes="orders:write"))
    ) -> Any:
        product = await catalog.price(order.product_id)
        if product is None:
            raise HTTPException(404, f"no product {order.product_id!r} in the catalog")
        seen_for = await catalog.seen_for(user)
        unit = float(product["price"])
        new_id = store.execute(
            "INSERT INTO orders (owner, username, product_id, product_name, quantity,"
            " unit_price, total, priced_by, created_at, seen_for)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                user.subject,
                user.claims.get("preferred_username"),
                product["id"],
                product["name"],
                order.quantity,
                unit,
                round(unit * order.quantity, 2),
                product["priced_by"],
                time.time(),
                seen_for,
            ),
        )
        return store.query("SELECT * FROM orders WHERE id = ?", (new_id,))[0]

    @app.get("/admin/orders", response_model=list[Order])
    async def all_orders(_: Principal = Depends(require(roles="admin"))) -> Any:
        return store.query("SELECT * FROM orders ORDER BY id")

    return app


def main() -> None:
    """Serve orders on the port of ``ORDERS_URL`` from the demo's facts."""
    import uvicorn

    facts = demo_facts()
    config = service_config(facts, audience="orders", client="ORDERS")
    auth = ServiceAuth(config)
    s2s = ClientCredentialsAuth(config, scope="catalog:read", audience="catalog")
    for_users = TokenExchanger(config, audience="catalog")
    catalog = CatalogClient(facts["CATALOG_URL"], s2s, for_users)
    app = create_app(auth, catalog, Path(facts.get("DEMO_DATA_DIR", os.getcwd())))
    host, port = host_port(facts["ORDERS_URL"])
    uvicorn.run(app, host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
