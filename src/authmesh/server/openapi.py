"""The server's OpenAPI document: security schemes and error bodies, so Swagger's "Authorize" works.

The routes read credentials themselves (several ``Authorization`` headers, a
client in the form body), so the schemes are declared here, by path, rather than
by FastAPI security dependencies, which would parse the header a second time and
answer malformed ones in their own words.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["describe_api"]

TOKEN_URL = "/oauth/token"
#: Endpoints where a confidential client authenticates (RFC 6749 §2.3.1).
CLIENT_AUTHENTICATED = frozenset({TOKEN_URL, "/oauth/revoke", "/oauth/introspect"})
#: Endpoints a service client reads with HTTP Basic.
FEED = frozenset({"/revocations", "/revocations/stream"})
#: Endpoints of a signed-in user or an admin, with an access token.
BEARER_PREFIXES = ("/admin/", "/account/", "/userinfo")

SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token issued by this server.",
    },
    "oauth2": {
        "type": "oauth2",
        "description": "Get an access token from this server's token endpoint.",
        "flows": {
            "password": {"tokenUrl": TOKEN_URL, "scopes": {}},
            "clientCredentials": {"tokenUrl": TOKEN_URL, "scopes": {}},
        },
    },
    "client": {
        "type": "http",
        "scheme": "basic",
        "description": "A confidential client's id and secret (client_secret_basic); "
        "client_secret_post in the form body works too.",
    },
}

ERROR_SCHEMA: dict[str, Any] = {
    "title": "OAuthError",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "string",
            "description": "An error code of RFC 6749 §5.2 or RFC 6750 §3.1",
            "examples": ["invalid_request", "invalid_grant", "invalid_token"],
        },
        "error_description": {"type": "string", "description": "For a person, not a program"},
    },
}

_ERROR_MEANINGS = {
    "400": "Malformed request (`invalid_request`, `invalid_grant`, `unsupported_grant_type`, …)",
    "401": "Missing or bad credentials; the `WWW-Authenticate` header names the scheme",
    "403": "Authenticated but not allowed (`insufficient_scope`, not an admin, …)",
    "429": "Too many requests or failed sign-ins; wait for `Retry-After` seconds",
}


def describe_api(app: FastAPI) -> None:
    """Make ``app.openapi()`` declare the security schemes and the error bodies."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _add_security(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_security(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    components.setdefault("schemas", {})["OAuthError"] = ERROR_SCHEMA
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            requirement, errors = _requirement(path, method)
            if requirement is not None:
                operation["security"] = requirement
            responses = operation.setdefault("responses", {})
            for status in errors:
                responses.setdefault(status, _error_response(status))


def _requirement(
    path: str, method: str
) -> tuple[list[dict[str, list[str]]] | None, tuple[str, ...]]:
    if path in CLIENT_AUTHENTICATED:
        # The empty requirement: a public client sends only its client_id.
        return [{"client": []}, {}], ("400", "401", "429")
    if path in FEED:
        return [{"client": []}], ("400", "401", "403")
    if path.startswith(BEARER_PREFIXES):
        return [{"bearer": []}, {"oauth2": []}], ("400", "401", "403")
    return None, ("400",) if method in {"post", "put", "patch", "delete"} else ()


def _error_response(status: str) -> dict[str, Any]:
    return {
        "description": _ERROR_MEANINGS[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}},
    }
