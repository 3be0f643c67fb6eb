"""Strawberry GraphQL: permission classes and a context getter.

::

    @strawberry.type
    class Query:
        @strawberry.field(permission_classes=[IsAuthenticated, HasRole("admin")])
        def users(self, info: strawberry.Info) -> list[User]: ...

    app = FastAPI()
    install(app, config_or_auth)
    app.include_router(GraphQLRouter(schema, context_getter=context_getter()), prefix="/graphql")

``install`` and ``mount_operations`` (``/healthz``, ``/readyz``, ``/metrics``) are
the Starlette/FastAPI ones (Strawberry runs inside such an app).

The principal is ``info.context["principal"]``. A request sending a bad token
is still refused with an HTTP 401 (by the middleware, or by
:func:`context_getter` without it); a missing principal, role or scope inside
the query becomes a GraphQL error with ``extensions.code`` ``UNAUTHENTICATED``
or ``FORBIDDEN``.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar

import strawberry
from graphql import GraphQLError
from starlette.requests import HTTPConnection
from strawberry.exceptions import StrawberryGraphQLError
from strawberry.permission import BasePermission
from strawberry.types import ExecutionContext, Info

from authmesh.service.principal import Principal
from authmesh.service.starlette import (
    AsyncTokenVerifier,
    install,
    mount_operations,
    principal_from_connection,
)

__all__ = [
    "FORBIDDEN",
    "UNAUTHENTICATED",
    "DelegatedBy",
    "HasAnyRole",
    "HasRole",
    "HasScope",
    "IsAuthenticated",
    "NotDelegated",
    "Schema",
    "context_getter",
    "install",
    "is_auth_denial",
    "mount_operations",
    "principal_from_info",
]

UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"


def context_getter(
    auth: AsyncTokenVerifier | None = None,
) -> Callable[[HTTPConnection], Awaitable[dict[str, Any]]]:
    """A ``context_getter`` for ``strawberry.fastapi.GraphQLRouter``: ``{"principal": …}``.

    ``auth`` defaults to the one ``install`` put on the app.
    """

    async def get_context(connection: HTTPConnection) -> dict[str, Any]:
        principal = await principal_from_connection(connection, required=False, auth=auth)
        return {"principal": principal}

    return get_context


def principal_from_info(info: Info[Any, Any]) -> Principal | None:
    """The caller: ``context["principal"]``, else what the middleware put in the scope."""
    context = info.context
    if isinstance(context, dict):
        principal = context.get("principal")
        request = context.get("request")
    else:
        principal = getattr(context, "principal", None)
        request = getattr(context, "request", None)
    if isinstance(principal, Principal):
        return principal
    scope = getattr(request, "scope", None)
    candidate = scope.get("auth") if isinstance(scope, dict) else None
    return candidate if isinstance(candidate, Principal) else None


def _unauthenticated() -> StrawberryGraphQLError:
    return StrawberryGraphQLError(
        "authentication required: send a bearer access token",
        extensions={"code": UNAUTHENTICATED},
    )


class IsAuthenticated(BasePermission):
    """The request carries a valid access token."""

    message = "authentication required: send a bearer access token"
    error_extensions = {"code": UNAUTHENTICATED}  # noqa: RUF012 - strawberry's own attribute

    def has_permission(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> bool:
        """Whether there is a principal."""
        return principal_from_info(info) is not None


class _Requirement(BasePermission):
    roles: ClassVar[frozenset[str]] = frozenset()
    any_roles: ClassVar[frozenset[str]] = frozenset()
    scopes: ClassVar[frozenset[str]] = frozenset()

    def has_permission(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> bool:
        principal = principal_from_info(info)
        if principal is None:
            # Not a FORBIDDEN: say what is really missing.
            raise _unauthenticated()
        return (
            principal.roles.issuperset(self.roles)
            and principal.scopes.issuperset(self.scopes)
            and (not self.any_roles or not principal.roles.isdisjoint(self.any_roles))
        )


def _make(kind: str, names: Iterable[str], **attrs: frozenset[str]) -> type[BasePermission]:
    values = sorted(names)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise ValueError(f"{kind} needs at least one non-empty name")
    # A valid, unique GraphQL name for the class's schema directive.
    slug = re.sub(r"\W", "_", "_".join(values))
    if slug != "_".join(values):
        slug += "_" + hashlib.blake2b("\0".join(values).encode(), digest_size=4).hexdigest()
    listed = ", ".join(values)
    what = {"HasRole": "role", "HasAnyRole": "one of the roles", "HasScope": "scope"}[kind]
    extension_key = "required_scopes" if kind == "HasScope" else "required_roles"
    namespace = {
        **attrs,
        "message": f"the token lacks the required {what} {listed}",
        "error_extensions": {"code": FORBIDDEN, extension_key: values},
        "__doc__": f"The token carries the {what} {listed}.",
        "__module__": __name__,
    }
    return type(f"{kind}_{slug}", (_Requirement,), namespace)


@functools.cache
def HasRole(*roles: str) -> type[BasePermission]:
    """A permission class: the token has every one of ``roles``."""
    return _make("HasRole", roles, roles=frozenset(roles))


@functools.cache
def HasAnyRole(*roles: str) -> type[BasePermission]:
    """A permission class: the token has at least one of ``roles``."""
    return _make("HasAnyRole", roles, any_roles=frozenset(roles))


@functools.cache
def HasScope(*scopes: str) -> type[BasePermission]:
    """A permission class: the token grants every one of ``scopes``."""
    return _make("HasScope", scopes, scopes=frozenset(scopes))


class NotDelegated(BasePermission):
    """A permission class: the caller's own token, not one a service obtained for a user."""

    message = "this field does not accept a token acting for a user"
    error_extensions = {"code": FORBIDDEN}  # noqa: RUF012 - strawberry's own attribute

    def has_permission(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> bool:
        """Whether the token was not delegated (token exchange)."""
        principal = principal_from_info(info)
        if principal is None:
            raise _unauthenticated()
        return not principal.is_delegated


@functools.cache
def DelegatedBy(*actors: str) -> type[BasePermission]:
    """A permission class: a token one of ``actors`` obtained for the user (token exchange).

    With no ``actors``, any service may be the one acting.
    """
    allowed = frozenset(actors)

    def has_permission(self: Any, source: Any, info: Info[Any, Any], **kwargs: Any) -> bool:
        principal = principal_from_info(info)
        if principal is None:
            raise _unauthenticated()
        return principal.actor is not None and (not allowed or principal.actor in allowed)

    listed = ", ".join(sorted(allowed)) or "any service"
    slug = hashlib.blake2b("\0".join(sorted(allowed)).encode(), digest_size=4).hexdigest()
    namespace = {
        "has_permission": has_permission,
        "message": f"this field needs a token obtained for the user by {listed}",
        "error_extensions": {"code": FORBIDDEN},
        "__doc__": f"The token was obtained for the user by {listed}.",
        "__module__": __name__,
    }
    return type(f"DelegatedBy_{slug}", (BasePermission,), namespace)


def is_auth_denial(error: GraphQLError) -> bool:
    """Whether a GraphQL error is one of ours: a missing token, role or scope."""
    code = (error.extensions or {}).get("code")
    return code in (UNAUTHENTICATED, FORBIDDEN)


class Schema(strawberry.Schema):
    """A ``strawberry.Schema`` that does not log auth denials as server errors.

    Strawberry logs every resolver error with its traceback; a caller without the
    role is the client's error, answered in the response, and a log full of
    tracebacks for it hides the real failures. Other errors are logged as before.
    """

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log the errors that are not auth denials."""
        super().process_errors([e for e in errors if not is_auth_denial(e)], execution_context)
