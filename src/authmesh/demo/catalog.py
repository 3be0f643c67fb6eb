"""The demo's **catalog**: a GraphQL service (Strawberry) protected by the SDK.

Queries are open to any signed-in caller with ``catalog:read`` (users and
services alike); ``addProduct`` needs the ``admin`` role and ``catalog:write``.
Run by ``authmesh demo`` as ``python -m authmesh.demo.catalog``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import strawberry
from fastapi import FastAPI
from strawberry.fastapi import GraphQLRouter
from strawberry.permission import BasePermission

from authmesh.demo.service_common import add_health, demo_facts, host_port, service_config
from authmesh.demo.storage import DemoStore
from authmesh.service import ServiceAuth
from authmesh.service.fastapi import install
from authmesh.service.strawberry import (
    HasRole,
    HasScope,
    IsAuthenticated,
    Schema,
    context_getter,
    principal_from_info,
)

if TYPE_CHECKING:
    # Only for annotations: it moved here in strawberry 0.236, and the extra allows 0.230.
    from strawberry.types.field import StrawberryField

__all__ = ["create_app", "main"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  price REAL NOT NULL
);
"""
_STARTER = [("Teapot", 25.0), ("Mug", 8.5), ("Kettle", 42.0)]


@strawberry.type
class Product:
    id: strawberry.ID
    name: str
    price: float


@strawberry.type
class Viewer:
    """Who the catalog sees calling: a user, or a service with its own identity."""

    subject: str
    client_id: str
    roles: list[str]
    scopes: list[str]
    username: str | None
    actor: str | None = strawberry.field(
        description="The service acting for the user (token exchange), if any"
    )


def _guarded_field(
    make_field: Callable[..., Any], *permissions: type[BasePermission]
) -> StrawberryField:
    """``make_field(permission_classes=...)``, typed as the decorator it is here.

    Called without a resolver, ``strawberry.field`` and ``strawberry.mutation`` are typed
    ``Any`` upstream, because the same call also declares plain data fields.
    """
    field: StrawberryField = make_field(permission_classes=list(permissions))
    return field


def _product(row: dict[str, Any]) -> Product:
    return Product(id=strawberry.ID(f"p{row['id']}"), name=row["name"], price=row["price"])


def _store(info: strawberry.Info) -> DemoStore:
    store: DemoStore = info.context["request"].app.state.catalog
    return store


@strawberry.type
class Query:
    @_guarded_field(strawberry.field, IsAuthenticated, HasScope("catalog:read"))
    def products(self, info: strawberry.Info) -> list[Product]:
        return [_product(r) for r in _store(info).query("SELECT * FROM products ORDER BY id")]

    @_guarded_field(strawberry.field, IsAuthenticated, HasScope("catalog:read"))
    def product(self, info: strawberry.Info, id: strawberry.ID) -> Product | None:
        raw = str(id)
        if not raw.startswith("p") or not raw[1:].isdigit():
            return None
        rows = _store(info).query("SELECT * FROM products WHERE id = ?", (int(raw[1:]),))
        return _product(rows[0]) if rows else None

    @_guarded_field(strawberry.field, IsAuthenticated)
    def viewer(self, info: strawberry.Info) -> Viewer:
        principal = principal_from_info(info)
        assert principal is not None  # IsAuthenticated ran first
        return Viewer(
            subject=principal.subject,
            client_id=principal.client_id,
            roles=sorted(principal.roles),
            scopes=sorted(principal.scopes),
            username=principal.claims.get("preferred_username"),
            actor=principal.actor,
        )


@strawberry.type
class Mutation:
    @_guarded_field(
        strawberry.mutation, IsAuthenticated, HasRole("admin"), HasScope("catalog:write")
    )
    def add_product(self, info: strawberry.Info, name: str, price: float) -> Product:
        name = name.strip()
        if not name or len(name) > 200:
            raise ValueError("name must have 1 to 200 characters")
        if not 0 <= price <= 1_000_000:
            raise ValueError("price must be between 0 and 1000000")
        store = _store(info)
        new_id = store.execute("INSERT INTO products (name, price) VALUES (?, ?)", (name, price))
        return _product(store.query("SELECT * FROM products WHERE id = ?", (new_id,))[0])


def create_app(auth: ServiceAuth, data_dir: Path) -> FastAPI:
    """The catalog app: GraphQL at ``/graphql``, health at ``/healthz``."""
    app = FastAPI(title="authmesh demo: catalog (GraphQL)")
    store = DemoStore(data_dir / "catalog.sqlite3", _SCHEMA)
    if not store.query("SELECT id FROM products LIMIT 1"):
        for name, price in _STARTER:
            store.execute("INSERT INTO products (name, price) VALUES (?, ?)", (name, price))
    app.state.catalog = store
    install(app, auth)
    schema = Schema(query=Query, mutation=Mutation)
    app.include_router(GraphQLRouter(schema, context_getter=context_getter()), prefix="/graphql")
    add_health(app, auth)
    return app


def main() -> None:
    """Serve the catalog on the port of ``CATALOG_URL`` from the demo's facts."""
    import uvicorn

    facts = demo_facts()
    auth = ServiceAuth(service_config(facts, audience="catalog", client="CATALOG"))
    app = create_app(auth, Path(facts.get("DEMO_DATA_DIR", os.getcwd())))
    host, port = host_port(facts["CATALOG_URL"])
    uvicorn.run(app, host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
