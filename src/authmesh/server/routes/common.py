"""What every route module needs: the server context, the caller's address, strict form parsing."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import JSONResponse

from authmesh.server.bearer import BearerPrincipal, authenticate_bearer, require_admin
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.errors import InvalidRequest
from authmesh.server.metrics import ServerMetrics

__all__ = [
    "NO_STORE",
    "Form",
    "admin_principal",
    "bearer_principal",
    "get_context",
    "get_metrics",
    "no_store_json",
    "read_form",
    "request_info",
]

#: RFC 6749 §5.1: token responses must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_FORM_BYTES = 16 * 1024
_REPEATABLE = frozenset({"audience", "resource"})


class Form:
    """A parsed form: single values, plus the repeatable RFC 8707 parameters."""

    def __init__(self, single: dict[str, str], repeated: dict[str, list[str]]) -> None:
        self.single = single
        self.repeated = repeated

    def get(self, name: str) -> str | None:
        """One parameter's value; an empty value counts as absent (RFC 6749 §3.1)."""
        return self.single.get(name)

    def require(self, name: str) -> str:
        """A mandatory parameter.

        Raises:
            InvalidRequest: it is missing.
        """
        value = self.single.get(name)
        if value is None:
            raise InvalidRequest(f"the '{name}' parameter is required")
        return value

    def all(self, name: str) -> list[str]:
        """Every value of a repeatable parameter."""
        return self.repeated.get(name, [])


def get_context(request: Request) -> ServerContext:
    """The app's server context."""
    ctx: ServerContext = request.app.state.context
    return ctx


def get_metrics(request: Request) -> ServerMetrics:
    """The app's metrics."""
    metrics: ServerMetrics = request.app.state.metrics
    return metrics


def request_info(request: Request, actor: str | None = None) -> RequestInfo:
    """The caller's address (and browser, for the account page) for audit and rate limits."""
    return RequestInfo(
        client_ip=request.client.host if request.client else None,
        actor=actor,
        user_agent=request.headers.get("user-agent", "")[:300] or None,
    )


async def read_form(request: Request) -> Form:
    """Parse an ``application/x-www-form-urlencoded`` body strictly.

    Raises:
        InvalidRequest: wrong content type, oversized or undecodable body, or a
            parameter given twice (RFC 6749 §3.2).
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise InvalidRequest("the body must be application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise InvalidRequest("the request body is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the body is not valid form-encoded UTF-8") from None
    single: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    for name, value in pairs:
        if "\x00" in value or "\x00" in name:
            raise InvalidRequest("parameters must not contain NUL characters")
        if name in _REPEATABLE:
            if value:
                repeated.setdefault(name, []).append(value)
            continue
        if name in single:
            raise InvalidRequest(f"the '{name}' parameter is repeated")
        if value:
            single[name] = value
    return Form(single, repeated)


def no_store_json(content: Any, status_code: int = 200) -> JSONResponse:
    """A JSON response that caches must not keep."""
    return JSONResponse(content, status_code=status_code, headers=NO_STORE)


async def bearer_principal(request: Request) -> BearerPrincipal:
    """FastAPI dependency: the caller of an endpoint that takes a bearer token."""
    return await authenticate_bearer(
        get_context(request),
        request.headers.getlist("authorization"),
        proofs=request.headers.getlist("dpop"),
        method=request.method,
        path=request.url.path,
    )


async def admin_principal(request: Request) -> BearerPrincipal:
    """FastAPI dependency: a caller holding the admin role."""
    principal = await bearer_principal(request)
    require_admin(principal)
    return principal
