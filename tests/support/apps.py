"""The services of the SDK and acceptance tests, protected the way the README shows.

Each answers ``GET /me`` (any valid token; echoes the principal), ``GET /admin``
(role ``admin``), ``POST /orders`` (scope ``orders:write``), ``GET /public``
(a token is optional) and ``GET /health``; the Strawberry service offers the
same as GraphQL fields.
"""

from __future__ import annotations

from typing import Any

import strawberry
from fastapi import Depends, FastAPI
from flask import Flask, g
from starlette.requests import Request
from strawberry.fastapi import GraphQLRouter

from authmesh.service import Principal, ServiceAuth
from authmesh.service.fastapi import CurrentPrincipal, install, optional_principal, require
from authmesh.service.flask import AuthMesh
from authmesh.service.starlette import get_principal
from authmesh.service.strawberry import (
    HasAnyRole,
    HasRole,
    HasScope,
    IsAuthenticated,
    context_getter,
    principal_from_info,
)

__all__ = ["describe", "fastapi_app", "flask_app", "graphql_app"]


def describe(principal: Principal) -> dict[str, Any]:
    """What ``/me`` answers: the principal's claims the SDK exposes."""
    return {
        "sub": principal.subject,
        "client_id": principal.client_id,
        "roles": sorted(principal.roles),
        "scopes": sorted(principal.scopes),
        "sid": principal.session_id,
        "jti": principal.token_id,
    }


def fastapi_app(auth: ServiceAuth, *, middleware: bool = True) -> FastAPI:
    """A REST service protected with FastAPI dependencies (and the middleware, if told)."""
    app = FastAPI()
    install(app, auth, middleware=middleware)

    @app.get("/public")
    async def public(user: Principal | None = Depends(optional_principal)) -> dict[str, Any]:
        return {"user": user.subject if user else None}

    @app.get("/scope-user")
    async def scope_user(request: Request) -> dict[str, Any]:
        principal = get_principal(request)
        return {"user": principal.subject if principal else None}

    @app.get("/me")
    async def me(user: CurrentPrincipal) -> dict[str, Any]:
        return describe(user)

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


def flask_app(auth: ServiceAuth, *, start: bool = True) -> tuple[Flask, AuthMesh]:
    """The same REST service in Flask (the feed followed by a thread if ``start``)."""
    app = Flask("orders")
    ext = AuthMesh(app, auth, start=start)

    @app.get("/public")
    def public() -> dict[str, Any]:
        return {"user": g.principal.subject if g.principal else None}

    @app.get("/me")
    @ext.required
    def me() -> dict[str, Any]:
        return describe(g.principal)

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

    @strawberry.field(permission_classes=[HasAnyRole("clerk", "admin")])
    def staff_note(self) -> str | None:
        return "staff only"

    @strawberry.field(permission_classes=[HasScope("catalog:read")])
    def items(self) -> list[str] | None:
        return ["apple", "pear"]

    @strawberry.field(permission_classes=[HasScope("orders:write")])
    def can_write_orders(self) -> bool | None:
        return True


SCHEMA = strawberry.Schema(query=Query)


def graphql_app(auth: ServiceAuth, *, middleware: bool = True, required: bool = False) -> FastAPI:
    """A GraphQL service: Strawberry on FastAPI, the principal in the context.

    ``required`` makes the middleware refuse every request without a token (401).
    """
    app = FastAPI()
    install(app, auth, middleware=middleware, required=required)
    app.include_router(GraphQLRouter(SCHEMA, context_getter=context_getter()), prefix="/graphql")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return auth.health()

    return app
