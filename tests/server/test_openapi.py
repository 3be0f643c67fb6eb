"""The OpenAPI document declares the security schemes and error bodies; docs need no CDN."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from authmesh.server.app import create_app
from authmesh.server.config import ServerSettings


@pytest.fixture(scope="module")
def app_and_schema(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    settings = ServerSettings(data_dir=Path(tmp_path_factory.mktemp("openapi")))
    app = create_app(settings)
    return app, app.openapi()


def _op(schema: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return schema["paths"][path][method]


def test_security_schemes_offer_password_client_credentials_and_bearer(
    app_and_schema: tuple[Any, dict[str, Any]],
) -> None:
    schemes = app_and_schema[1]["components"]["securitySchemes"]

    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["bearer"]["description"],
    }
    flows = schemes["oauth2"]["flows"]
    assert flows["password"]["tokenUrl"] == "/oauth/token"
    assert flows["clientCredentials"]["tokenUrl"] == "/oauth/token"
    assert schemes["client"]["scheme"] == "basic"


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/admin/users", "get"),
        ("/admin/users/{username}/block", "post"),
        ("/account/password", "post"),
        ("/userinfo", "get"),
    ],
)
def test_bearer_operations_require_a_token(
    app_and_schema: tuple[Any, dict[str, Any]], path: str, method: str
) -> None:
    op = _op(app_and_schema[1], path, method)

    assert op["security"] == [{"bearer": []}, {"oauth2": []}]
    for status in ("401", "403"):
        body = op["responses"][status]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/OAuthError"}


def test_token_endpoint_takes_client_authentication_and_documents_its_errors(
    app_and_schema: tuple[Any, dict[str, Any]],
) -> None:
    schema = app_and_schema[1]
    op = _op(schema, "/oauth/token", "post")

    assert op["security"] == [{"client": []}, {}]
    assert {"400", "401", "429"} <= set(op["responses"])
    assert schema["components"]["schemas"]["OAuthError"]["required"] == ["error"]


def test_public_documents_need_no_credentials(app_and_schema: tuple[Any, dict[str, Any]]) -> None:
    op = _op(app_and_schema[1], "/.well-known/jwks.json", "get")

    assert "security" not in op


def test_swagger_ui_is_served_from_the_server_itself(
    app_and_schema: tuple[Any, dict[str, Any]],
) -> None:
    async def fetch(*paths: str) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app_and_schema[0])
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            return [await client.get(path) for path in paths]

    page, script, css = asyncio.run(
        fetch("/docs", "/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css")
    )

    assert page.status_code == 200
    assert "https://" not in page.text
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    assert script.status_code == 200
    assert len(script.content) > 100_000
    assert css.status_code == 200
