"""FastAPI: ``install(app, auth)`` and the ``authenticated`` / ``require`` dependencies.

::

    auth = ServiceAuth(ServiceConfig(issuer=..., audience="orders", client_id=..., ...))
    app = FastAPI()
    install(app, auth)

    @app.get("/orders")
    async def orders(user: Principal = Depends(require(scopes="orders:read"))): ...

The dependencies are ``async def``: a plain ``def`` dependency runs in a thread
pool and costs ~130 µs a request (DESIGN "Performance facts").
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection

from authmesh.service.errors import InsufficientScope
from authmesh.service.principal import Principal, check_access
from authmesh.service.runtime import ServiceAuth
from authmesh.service.starlette import (
    STATE_ATTR,
    AuthHTTPException,
    BearerAuthMiddleware,
    install_error_handlers,
    principal_from_connection,
    realm_of,
)

__all__ = [
    "AuthHTTPException",
    "CurrentPrincipal",
    "authenticated",
    "install",
    "optional_principal",
    "require",
]


def install(
    app: FastAPI,
    auth: ServiceAuth,
    *,
    middleware: bool = True,
    required: bool = False,
    lifespan: bool = True,
) -> None:
    """Set authmesh up on a FastAPI (or Starlette) app, before it starts.

    Args:
        app: the application.
        auth: the service's :class:`ServiceAuth`.
        middleware: add :class:`BearerAuthMiddleware` (tokens checked once per request).
        required: with the middleware, refuse every request without a token.
        lifespan: wrap the app's lifespan to start/stop the JWKS cache and feed
            (leave false if you pass ``auth.lifespan`` yourself).
    """
    setattr(app.state, STATE_ATTR, auth)
    if middleware:
        app.add_middleware(BearerAuthMiddleware, auth=auth, required=required)
    install_error_handlers(app, auth.realm)
    if lifespan:
        inner = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def wrapped(app_: Any) -> AsyncIterator[Any]:
            async with auth.lifespan(app_), inner(app_) as state:
                yield state

        app.router.lifespan_context = wrapped


async def optional_principal(connection: HTTPConnection) -> Principal | None:
    """Dependency: the caller, or ``None`` without a token (a bad token is still a 401)."""
    return await principal_from_connection(connection, required=False)


async def authenticated(connection: HTTPConnection) -> Principal:
    """Dependency: the caller; 401 without a valid token."""
    principal = await principal_from_connection(connection, required=True)
    assert principal is not None
    return principal


#: ``async def view(user: CurrentPrincipal)``.
CurrentPrincipal = Annotated[Principal, Depends(authenticated)]


def require(
    *,
    roles: str | Iterable[str] | None = None,
    scopes: str | Iterable[str] | None = None,
    any_roles: str | Iterable[str] | None = None,
) -> Callable[[HTTPConnection], Awaitable[Principal]]:
    """Dependency factory: the caller must have every role of ``roles``, every scope
    of ``scopes`` and one of ``any_roles``; else 403 ``insufficient_scope`` (RFC 6750 §3.1).
    """

    async def dependency(connection: HTTPConnection) -> Principal:
        principal = await principal_from_connection(connection, required=True)
        assert principal is not None
        try:
            check_access(principal, roles=roles, scopes=scopes, any_roles=any_roles)
        except InsufficientScope as exc:
            raise AuthHTTPException(exc, realm_of(connection)) from None
        return principal

    return dependency
