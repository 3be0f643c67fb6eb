"""The three services of the acceptance tests, protected the way the README shows.

Each answers ``GET /me`` (any valid token; echoes the principal), ``GET /admin``
(role ``admin``), ``POST /orders`` (scope ``orders:write``) and ``GET /health``;
the Strawberry service offers the same as GraphQL fields.
"""

from __future__ import annotations

from typing import Any

import strawberry
from fastapi import Depends, FastAPI
from flask import Flask, g
from strawberry.fastapi import GraphQLRouter

from authmesh.service import Principal, ServiceAuth
from authmesh.service.fastapi import CurrentPrincipal, install, require
from authmesh.service.flask import AuthMesh
from authmesh.service.strawberry import HasRole, HasScope, IsAuthenticated, principal_from_info

__all__ = ["fastapi_app", "flask_app", "graphql_app"]


def _describe(principal: Principal) -> dict[str, Any]:
    return {
        "sub": principal.subject,
        "client_id": principal.client_id,
        "roles": sorted(principal.roles),
        "scopes": sorted(principal.scopes),
        "sid": principal.session_id,
        "jti": principal.token_id,
    }


def fastapi_app(auth: ServiceAuth) -> FastAPI:
    """A REST service with FastAPI dependencies."""
    app = FastAPI()
    install(app, auth)

    @app.get("/me")
    async def me(user: CurrentPrincipal) -> dict[str, Any]:
        return _describe(user)

    @app.get("/admin")
    async def admin(user: Principal = Depends(require(roles="admin"))) -> dict[str, Any]:
        return {"admin": user.subject}

    @app.post("/orders")
    async def create_order(
        user: Principal = Depends(require(scopes="orders:write")),
    ) -> dict[str, Any]:
        return {"created_by": user.subject}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return auth.health()

    return app


def flask_app(auth: ServiceAuth) -> tuple[Flask, AuthMesh]:
    """The same REST service in Flask (the feed followed by a thread)."""
    app = Flask("acceptance-orders")
    ext = AuthMesh(app, auth)

    @app.get("/me")
    @ext.required
    def me() -> dict[str, Any]:
        return _describe(g.principal)

    @app.get("/admin")
    @ext.require(roles="admin")
    def admin() -> dict[str, Any]:
        return {"admin": g.principal.subject}

    @app.post("/orders")
    @ext.require(scopes="orders:write")
    def create_order() -> dict[str, Any]:
        return {"created_by": g.principal.subject}

    @app.get("/health")
    def health() -> dict[str, Any]:
        return ext.health()

    return app, ext


@strawberry.type
class Me:
    sub: str
    roles: list[str]
    scopes: list[str]


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"

    @strawberry.field(permission_classes=[IsAuthenticated])
    def me(self, info: strawberry.Info) -> Me:
        principal = principal_from_info(info)
        assert principal is not None
        return Me(
            sub=principal.subject, roles=sorted(principal.roles), scopes=sorted(principal.scopes)
        )

    @strawberry.field(permission_classes=[IsAuthenticated, HasRole("admin")])
    def admin_report(self) -> str | None:
        return "secret numbers"

    @strawberry.field(permission_classes=[HasScope("orders:write")])
    def can_write_orders(self) -> bool | None:
        return True


SCHEMA = strawberry.Schema(query=Query)


def graphql_app(auth: ServiceAuth, *, required: bool = False) -> FastAPI:
    """A GraphQL service: Strawberry on FastAPI, the principal in the context.

    ``required`` makes the middleware refuse every request without a token (401).
    """
    app = FastAPI()
    install(app, auth, required=required)
    app.include_router(GraphQLRouter(SCHEMA), prefix="/graphql")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return auth.health()

    return app
