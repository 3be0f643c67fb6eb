"""The SDK's FastAPI dependency, and ``AuthRoute``, which checks it without resolving it.

FastAPI resolves every dependency through its general machinery (a recursive
solve, a cache key, three callable classifications) before it reads a single
header, and that costs a small endpoint more than the SDK's own check
(bench/RESULTS.md, part ``rps``, ``/noop-dep``). A route whose endpoint takes
one of the SDK's dependencies (``require(...)``, ``authenticated``,
``optional_principal``) directly gets a second handler built by FastAPI from the
same endpoint without that dependency: the route authenticates the request
first, exactly as the dependency would, then hands the principal to the
endpoint under the parameter's name.

FastAPI's dependency overrides keep working: while the app has any, the route
serves through FastAPI's own handler, dependency included. So do nested uses:
a route whose own dependencies also use an SDK dependency keeps FastAPI's
handler, so that one request is authenticated once.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from authmesh.service.errors import BearerError
from authmesh.service.principal import AccessRule, Principal
from authmesh.service.starlette import (
    AuthHTTPException,
    known_principal,
    principal_from_connection,
    realm_of,
)

__all__ = ["AuthRoute", "BearerDependency"]

#: Where the route leaves the dependency's answer for the endpoint's call.
_ANSWER = "authmesh.dependency"
#: The parameter FastAPI fills with the ``Request`` when the endpoint declares none.
_REQUEST_PARAM = "authmesh_route_request"

_Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class BearerDependency(SecurityBase):
    """A dependency that FastAPI lists as the ``bearer`` security scheme of its operations.

    FastAPI declares a scheme for every dependency that is a :class:`SecurityBase`,
    so Swagger's "Authorize" button appears with no extra dependency to resolve.
    """

    def __init__(self, rule: AccessRule, *, required: bool = True) -> None:
        self.model = HTTPBearerModel(
            bearerFormat="JWT", description="An access token from the auth server"
        )
        self.scheme_name = "bearer"
        self.rule = rule
        self.required = required
        self._checks_access = bool(rule)
        # Precomputed: a rule of roles and scopes alone passes on two subset tests.
        self._grants = (
            (rule.roles, rule.scopes)
            if rule == AccessRule(roles=rule.roles, scopes=rule.scopes)
            else None
        )

    async def __call__(self, connection: HTTPConnection) -> Principal | None:
        principal = self.known(connection)
        if principal is None:
            principal = await principal_from_connection(connection, required=self.required)
            if principal is not None and self._checks_access:
                self._check_rule(principal, connection)
        return principal

    def known(self, connection: HTTPConnection) -> Principal | None:
        """The answer when the caller is known without awaiting anything (the middleware's
        principal, or a token the verifier holds); ``None``: await the dependency itself.

        Raises:
            AuthHTTPException: as the dependency.
        """
        principal = known_principal(connection)
        if principal is not None and self._checks_access:
            grants = self._grants
            if grants is None or not (
                grants[0] <= principal.roles and grants[1] <= principal.scopes
            ):
                self._check_rule(principal, connection)
        return principal

    def _check_rule(self, principal: Principal, connection: HTTPConnection) -> None:
        try:
            self.rule.check(principal)
        except BearerError as exc:
            raise AuthHTTPException(exc, realm_of(connection)) from None


class AuthRoute(APIRoute):
    """An :class:`~fastapi.routing.APIRoute` with a fast path for the SDK's dependencies.

    ``install(app, ...)`` makes it the app's route class; give it to an
    ``APIRouter(route_class=AuthRoute)`` for the routes of a router.
    """

    def get_route_handler(self) -> _Handler:
        standard = super().get_route_handler()
        lean = _lean_handler(self)
        if lean is None:
            return standard
        lean_handler, bearer = lean
        provider = self.dependency_overrides_provider

        async def handler(request: Request) -> Response:
            if provider is not None and getattr(provider, "dependency_overrides", None):
                return await standard(request)
            # Before FastAPI reads the body or the parameters, as the dependency ran:
            # a caller without a valid token learns nothing about them.
            principal = bearer.known(request)
            if principal is None:
                principal = await bearer(request)
            request.scope[_ANSWER] = principal
            return await lean_handler(request)

        return handler


def _lean_handler(route: APIRoute) -> tuple[_Handler, BearerDependency] | None:
    """FastAPI's handler for the endpoint without the bearer dependency, and the dependency."""
    dependant = route.dependant
    ours = [d for d in dependant.dependencies if isinstance(d.call, BearerDependency)]
    others = [d for d in dependant.dependencies if not isinstance(d.call, BearerDependency)]
    if len(ours) != 1 or any(_uses(d, BearerDependency) for d in others):
        return None
    bearer = ours[0]
    dependency = bearer.call
    endpoint = dependant.call
    if endpoint is None or not isinstance(dependency, BearerDependency):
        return None
    lean = copy.copy(dependant)
    lean.dependencies = others
    lean.call = _endpoint_call(endpoint, bearer.name, dependant.request_param_name)
    if dependant.request_param_name is None:
        lean.request_param_name = _REQUEST_PARAM
    route.dependant = lean
    try:
        handler = APIRoute.get_route_handler(route)
    finally:
        route.dependant = dependant
    if _built_from_other_dependant(route, lean):
        return None
    return handler, dependency


def _built_from_other_dependant(route: APIRoute, lean: Dependant) -> bool:
    """Whether FastAPI built the handler from a dependant other than the route's own.

    An included router's route is served from the dependant of its inclusion
    (with the router's dependencies), which this route cannot see.
    """
    import fastapi.routing

    context_var = getattr(fastapi.routing, "_effective_route_context_var", None)
    if context_var is None:
        return False
    context = context_var.get()
    return context is not None and getattr(context, "dependant", lean) is not lean


def _uses(dependant: Dependant, kind: type) -> bool:
    return any(isinstance(d.call, kind) or _uses(d, kind) for d in dependant.dependencies)


def _endpoint_call(
    endpoint: Callable[..., Any], principal_name: str | None, request_name: str | None
) -> Callable[..., Any]:
    """``endpoint`` taking the route's answer under ``principal_name``.

    The same kind of callable as ``endpoint``, so that FastAPI awaits it or
    runs it in its thread pool exactly as it would the endpoint.
    """
    keep_request = request_name is not None
    name = request_name or _REQUEST_PARAM

    # The two bodies repeat three lines rather than share a helper: a call more on
    # every request is a measurable share of what the route saves (bench part ``rps``).
    call: Callable[..., Any]
    if inspect.iscoroutinefunction(endpoint):

        async def call(**kwargs: Any) -> Any:
            request: Request = kwargs[name] if keep_request else kwargs.pop(name)
            if principal_name is not None:
                kwargs[principal_name] = request.scope[_ANSWER]
            return await endpoint(**kwargs)

    else:

        def call(**kwargs: Any) -> Any:
            request: Request = kwargs[name] if keep_request else kwargs.pop(name)
            if principal_name is not None:
                kwargs[principal_name] = request.scope[_ANSWER]
            return endpoint(**kwargs)

    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(call, attribute, getattr(endpoint, attribute, None))
    return call
