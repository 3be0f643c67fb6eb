"""FastAPI: ``install(app, auth)`` and the ``authenticated`` / ``require`` dependencies.

::

    auth = ServiceAuth(ServiceConfig(issuer=..., audience="orders", client_id=..., ...))
    app = FastAPI()
    install(app, auth)

    @app.get("/orders")
    async def orders(user: Principal = Depends(require(scopes="orders:read"))): ...

The dependencies are ``async def``: a plain ``def`` dependency runs in a thread
pool and costs ~130 µs a request (DESIGN "Performance facts").

For the hottest endpoints, :func:`protected` does the same checks as a
decorator: FastAPI's dependency machinery costs ~10 µs a request by itself, more
than the SDK's check of a known token (bench/RESULTS.md, part ``rps``)::

    @app.get("/orders")
    @protected(scopes="orders:read")
    async def orders(user: Principal): ...
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any, TypeVar

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request

from authmesh.service.errors import InsufficientScope
from authmesh.service.principal import Principal, check_access
from authmesh.service.starlette import (
    AuthHTTPException,
    install,
    principal_from_connection,
    realm_of,
)

__all__ = [
    "AuthHTTPException",
    "CurrentPrincipal",
    "authenticated",
    "install",
    "optional_principal",
    "protected",
    "require",
]

_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])
#: The parameter :func:`protected` adds when the endpoint takes no ``Request`` itself.
_REQUEST_PARAM = "authmesh_request"


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


def protected(
    *,
    roles: str | Iterable[str] | None = None,
    scopes: str | Iterable[str] | None = None,
    any_roles: str | Iterable[str] | None = None,
) -> Callable[[_Endpoint], _Endpoint]:
    """Decorator: the endpoint needs a valid token with these roles and scopes.

    The same checks and answers as :func:`require` (401 ``invalid_token``, 403
    ``insufficient_scope``), without a dependency: FastAPI hands the endpoint
    its ``Request`` (cheap), and the decorator authenticates it. A parameter
    annotated :class:`Principal` receives the caller. Put it under the route
    decorator::

        @app.get("/me")
        @protected()
        async def me(user: Principal) -> dict[str, str]: ...
    """

    def decorate(endpoint: _Endpoint) -> _Endpoint:
        signature = inspect.signature(endpoint, eval_str=True)
        params = list(signature.parameters.values())
        principal_names = [p.name for p in params if p.annotation is Principal]
        request_name = next((p.name for p in params if p.annotation is Request), None)
        visible = [p for p in params if p.name not in principal_names]
        if request_name is None:
            request_name = _REQUEST_PARAM
            visible.append(
                inspect.Parameter(
                    _REQUEST_PARAM, inspect.Parameter.KEYWORD_ONLY, annotation=Request
                )
            )
        keep_request = request_name in signature.parameters
        is_async = inspect.iscoroutinefunction(endpoint)
        checks_access = roles is not None or scopes is not None or any_roles is not None

        @functools.wraps(endpoint)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            request: Request = kwargs[request_name] if keep_request else kwargs.pop(request_name)
            principal = await principal_from_connection(request, required=True)
            assert principal is not None
            if checks_access:
                try:
                    check_access(principal, roles=roles, scopes=scopes, any_roles=any_roles)
                except InsufficientScope as exc:
                    raise AuthHTTPException(exc, realm_of(request)) from None
            for name in principal_names:
                kwargs[name] = principal
            if is_async:
                return await endpoint(*args, **kwargs)
            return await run_in_threadpool(endpoint, *args, **kwargs)

        # FastAPI reads this signature: the Principal parameters are ours to fill.
        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=sorted(visible, key=lambda p: p.kind)
        )
        return wrapper  # type: ignore[return-value]

    return decorate
