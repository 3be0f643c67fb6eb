"""Small services built with the SDK, exactly as a developer writes them."""

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

__all__ = ["flask_app", "graphql_app", "orders_app"]


def orders_app(auth: ServiceAuth, *, middleware: bool = True) -> FastAPI:
    """A REST service protected with FastAPI dependencies."""
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
        return {"sub": user.subject, "roles": sorted(user.roles), "sid": user.session_id}

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
    """The same service in Flask."""
    app = Flask("orders")
    ext = AuthMesh(app, auth, start=start)

    @app.get("/public")
    def public() -> dict[str, Any]:
        return {"user": g.principal.subject if g.principal else None}

    @app.get("/me")
    @ext.required
    def me() -> dict[str, Any]:
        return {"sub": g.principal.subject, "roles": sorted(g.principal.roles)}

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
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"

    @strawberry.field(permission_classes=[IsAuthenticated])
    def me(self, info: strawberry.Info) -> str:
        principal = principal_from_info(info)
        assert principal is not None
        return principal.subject

    @strawberry.field(permission_classes=[IsAuthenticated, HasRole("admin")])
    def admin_report(self) -> str | None:
        return "secret numbers"

    @strawberry.field(permission_classes=[HasAnyRole("clerk", "admin")])
    def staff_note(self) -> str | None:
        return "staff only"

    @strawberry.field(permission_classes=[HasScope("catalog:read")])
    def items(self) -> list[str] | None:
        return ["apple", "pear"]


SCHEMA = strawberry.Schema(query=Query)


def graphql_app(auth: ServiceAuth, *, middleware: bool = True) -> FastAPI:
    """A GraphQL service: Strawberry on FastAPI."""
    app = FastAPI()
    install(app, auth, middleware=middleware)
    app.include_router(GraphQLRouter(SCHEMA, context_getter=context_getter()), prefix="/graphql")
    return app
