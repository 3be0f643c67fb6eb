"""FastAPI: ``install(app, config_or_auth)`` and the ``require`` / ``authenticated`` dependencies.

::

    app = FastAPI()
    auth = install(app, ServiceConfig(issuer=..., audience="orders", client_id=..., ...))

    @app.get("/orders")
    async def orders(user: Principal = Depends(require(scopes="orders:read"))): ...

The dependencies are ``async def`` (FastAPI runs a plain ``def`` dependency in
its thread pool) and take only the connection, which FastAPI passes as it is:
they read the principal the middleware put in the scope, or verify the token
themselves when the middleware is not installed.

The routes declared after ``install`` are :class:`AuthRoute` routes, which check
an endpoint's own SDK dependency without FastAPI resolving it.
:func:`protected` makes the same checks as a decorator, with no dependency at
all, for other routes::

    @app.get("/orders")
    @protected(scopes="orders:read")
    async def orders(user: Principal): ...
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar, Unpack

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request

from authmesh.service._fastapi_route import AuthRoute, BearerDependency
from authmesh.service.config import ServiceConfig
from authmesh.service.errors import BearerError
from authmesh.service.principal import AccessRule, AccessRuleArgs, Principal
from authmesh.service.service_auth import ServiceAuth
from authmesh.service.starlette import (
    AuthHTTPException,
    known_principal,
    mount_operations,
    principal_from_connection,
    realm_of,
)
from authmesh.service.starlette import install as install_on_starlette

__all__ = [
    "AuthHTTPException",
    "AuthRoute",
    "CurrentPrincipal",
    "authenticated",
    "install",
    "mount_operations",
    "optional_principal",
    "protected",
    "require",
]

_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])
#: The parameter :func:`protected` adds when the endpoint takes no ``Request`` itself.
_REQUEST_PARAM = "authmesh_request"


def install(
    app: FastAPI,
    config_or_auth: ServiceConfig | ServiceAuth,
    *,
    middleware: bool = True,
    required: bool = False,
    lifespan: bool = True,
) -> ServiceAuth:
    """Set authmesh up on a FastAPI app, before it starts; see the Starlette ``install``.

    The routes the app declares afterwards use :class:`AuthRoute`: an endpoint
    taking ``require(...)``, ``authenticated`` or ``optional_principal`` is
    authenticated without FastAPI resolving the dependency, with the same
    answers. Pass ``route_class=AuthRoute`` to an ``APIRouter`` for its routes.
    """
    auth = install_on_starlette(
        app, config_or_auth, middleware=middleware, required=required, lifespan=lifespan
    )
    if isinstance(app, FastAPI) and app.router.route_class is APIRoute:
        app.router.route_class = AuthRoute
    return auth


#: Dependency: the caller, or ``None`` without a token (a bad token is still a 401).
optional_principal = BearerDependency(AccessRule.of(), required=False)
#: Dependency: the caller; 401 without a valid token.
authenticated = BearerDependency(AccessRule.of())

#: ``async def view(user: CurrentPrincipal)``.
CurrentPrincipal = Annotated[Principal, Depends(authenticated)]


def require(**rule: Unpack[AccessRuleArgs]) -> Callable[[HTTPConnection], Awaitable[Principal]]:
    """Dependency factory: the caller must have every role of ``roles``, every scope
    of ``scopes`` and one of ``any_roles``; else 403 ``insufficient_scope`` (RFC 6750 §3.1).
    ``delegation`` accepts (``allow``), needs (``require``) or refuses (``refuse``) a
    token a service obtained for the user by token exchange; ``actors`` names the
    services that may act for users here.

    ``acr`` (e.g. ``"mfa"``) and ``max_age`` (seconds since the sign-in) demand a
    strong or recent sign-in; else 401 ``insufficient_user_authentication`` with
    ``acr_values``/``max_age`` in the challenge (RFC 9470), so the client steps up.

    The operation shows the ``bearer`` security scheme in the app's OpenAPI document.
    """
    return BearerDependency(AccessRule.of(**rule))  # type: ignore[return-value]


def protected(**rule: Unpack[AccessRuleArgs]) -> Callable[[_Endpoint], _Endpoint]:
    """Decorator: the endpoint needs a valid token with these roles and scopes.

    The same checks and answers as :func:`require` (401 ``invalid_token``, 403
    ``insufficient_scope``, 401 ``insufficient_user_authentication``), without a
    dependency: FastAPI hands the endpoint its ``Request``, and the decorator
    authenticates it. A parameter annotated :class:`Principal` receives the caller.
    Put it under the route decorator (above it, FastAPI refuses the ``Principal``
    parameter at start-up)::

        @app.get("/me")
        @protected()
        async def me(user: Principal) -> dict[str, str]: ...
    """
    access = AccessRule.of(**rule)
    checks_access = bool(access)

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

        @functools.wraps(endpoint)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            request: Request = kwargs[request_name] if keep_request else kwargs.pop(request_name)
            principal = known_principal(request) or await principal_from_connection(
                request, required=True
            )
            assert principal is not None
            if checks_access:
                try:
                    access.check(principal)
                except BearerError as exc:
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
