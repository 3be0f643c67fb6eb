"""An SDK-protected FastAPI app shows the bearer scheme on its protected operations."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from authmesh.service.fastapi import (
    CurrentPrincipal,
    optional_principal,
    require,
)
from authmesh.service.principal import Principal


def _schema() -> dict[str, Any]:
    app = FastAPI()

    @app.get("/orders")
    async def orders(user: Principal = Depends(require(scopes="orders:read"))) -> str:
        return user.subject

    @app.get("/me")
    async def me(user: CurrentPrincipal) -> str:
        return user.subject

    @app.get("/maybe")
    async def maybe(user: Principal | None = Depends(optional_principal)) -> str:
        return user.subject if user else "anonymous"

    @app.get("/public")
    async def public() -> str:
        return "hello"

    return app.openapi()


def test_protected_operations_declare_the_bearer_scheme() -> None:
    schema = _schema()

    scheme = schema["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert scheme["bearerFormat"] == "JWT"
    for path in ("/orders", "/me", "/maybe"):
        assert schema["paths"][path]["get"]["security"] == [{"bearer": []}], path


def test_public_operations_and_parameters_stay_as_written() -> None:
    schema = _schema()

    assert "security" not in schema["paths"]["/public"]["get"]
    # The dependency takes only the connection: no parameter leaks into the document.
    for path in ("/orders", "/me", "/maybe"):
        assert schema["paths"][path]["get"].get("parameters", []) == [], path
