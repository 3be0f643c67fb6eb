"""Starlette / ASGI: ``install(app, config_or_auth)``, a pure ASGI middleware, and the
one place failures become responses.

::

    app = Starlette(routes=...)
    install(app, ServiceConfig(issuer=..., audience="orders", client_id=..., ...))

:class:`BearerAuthMiddleware` verifies the bearer token of every HTTP and
WebSocket connection that sends one and sets ``scope["auth"]`` and
``scope["user"]`` to the :class:`Principal` (``None`` when no token came). A
request carrying a bad token is refused with 401 even on public endpoints
(RFC 6750 §3.1); one that cannot be checked right now (a stale revocation
feed) with 503 and ``Retry-After``. It is pure ASGI, not ``BaseHTTPMiddleware``: no extra task
or thread per request.

Failures become HTTP only through :func:`error_response`; code deeper in the
app raises :class:`AuthHTTPException` (a Starlette ``HTTPException``, so it
still becomes a 401/403 with its challenge if the handlers were not installed).

The middleware and token reading (:mod:`._starlette_bearer`), the failure responses
(:mod:`._starlette_errors`) and the operations middleware (:mod:`._starlette_operations`)
are private modules; their public names are re-exported here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from authmesh.jose.errors import TokenRejected
from authmesh.service._ssf_push_http import SsfPushASGIMiddleware
from authmesh.service._starlette_bearer import (
    CHECKED,
    AsyncTokenVerifier,
    BearerAuthMiddleware,
    cached_principal,
    check_presentation,
    read_credentials,
)
from authmesh.service._starlette_errors import (
    AuthHTTPException,
    error_response,
    install_error_handlers,
)
from authmesh.service._starlette_operations import OperationsMiddleware
from authmesh.service.config import ServiceConfig
from authmesh.service.errors import BearerError, MissingToken
from authmesh.service.operations import MetricsPage, operation_paths
from authmesh.service.principal import Principal
from authmesh.service.service_auth import ServiceAuth

__all__ = [
    "AsyncTokenVerifier",
    "AuthHTTPException",
    "BearerAuthMiddleware",
    "OperationsMiddleware",
    "error_response",
    "find_auth",
    "get_principal",
    "install",
    "install_error_handlers",
    "known_principal",
    "mount_operations",
    "principal_from_connection",
    "realm_of",
]

#: app.state attribute holding the ServiceAuth (set by the adapters' install helpers).
STATE_ATTR = "authmesh"
#: Probes and scrapes are not traced (``otel``): they would drown the requests that matter.
UNTRACED_URLS = "/healthz,/readyz,/metrics"


def install(
    app: Starlette,
    config_or_auth: ServiceConfig | ServiceAuth,
    *,
    middleware: bool = True,
    required: bool = False,
    lifespan: bool = True,
) -> ServiceAuth:
    """Set authmesh up on a Starlette (or FastAPI) app, before it starts.

    Args:
        app: the application.
        config_or_auth: the service's :class:`ServiceConfig`, or a ready :class:`ServiceAuth`.
        middleware: add :class:`BearerAuthMiddleware` (tokens checked once per request).
        required: with the middleware, refuse every request without a token.
        lifespan: wrap the app's lifespan to start/stop the JWKS cache and feed
            (leave false if you pass ``auth.lifespan`` yourself).

    With ``revocation_transport="ssf-push"`` the app also serves the Shared
    Signals push endpoint at ``ssf_push_path`` (docs/ssf.md).

    With ``otel`` in the config, the app's requests become OpenTelemetry server
    spans that continue the caller's trace.

    Returns:
        the :class:`ServiceAuth` now serving the app (for health and metrics).
    """
    auth = ServiceAuth.of(config_or_auth)
    setattr(app.state, STATE_ATTR, auth)
    if middleware:
        app.add_middleware(BearerAuthMiddleware, auth=auth, required=required)
    if auth.ssf_push is not None:
        # Outside the bearer check: the transmitter authenticates with the stream's secret.
        app.add_middleware(SsfPushASGIMiddleware, endpoint=auth.ssf_push)
    install_error_handlers(app, auth.realm)
    if auth.config.otel:
        from authmesh.tracing import instrument_asgi_app

        instrument_asgi_app(app, excluded_urls=UNTRACED_URLS)
    if lifespan:
        inner = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def wrapped(app_: Any) -> AsyncIterator[Any]:
            async with auth.lifespan(app_), inner(app_) as state:
                yield state

        app.router.lifespan_context = wrapped
    return auth


def mount_operations(
    app: Starlette,
    auth: ServiceAuth | None = None,
    *,
    prefix: str = "",
    metrics: bool = True,
) -> None:
    """Serve ``/healthz``, ``/readyz`` and ``/metrics`` on a Starlette (or FastAPI) app.

    ::

        auth = install(app, config)
        mount_operations(app, auth)

    They are answered ahead of the app's middleware and routes: no token is
    needed even with ``required=True``, probes are not traced, and they stay out
    of the OpenAPI document. See :mod:`authmesh.service.operations` for the answers.

    Args:
        app: the application, before it starts.
        auth: the :class:`ServiceAuth` ``install`` returned (default: the one on the app).
        prefix: put the three paths under this one (``"/ops"``).
        metrics: serve ``/metrics`` (needs ``prometheus_client``).

    Raises:
        ConfigError: ``metrics`` without ``prometheus_client``, or a bad ``prefix``.
        RuntimeError: no ``auth`` given and ``install`` was not called.
    """
    if auth is None:
        auth = getattr(app.state, STATE_ATTR, None)
        if not isinstance(auth, ServiceAuth):
            raise RuntimeError("mount_operations needs install(app, ...) first, or auth=")
    app.add_middleware(
        OperationsMiddleware,
        auth=auth,
        paths=operation_paths(prefix),
        page=MetricsPage(auth) if metrics else None,
    )


def get_principal(connection: HTTPConnection) -> Principal | None:
    """The principal the middleware authenticated, if any."""
    principal = connection.scope.get("auth")
    return principal if isinstance(principal, Principal) else None


async def principal_from_connection(
    connection: HTTPConnection, *, required: bool, auth: AsyncTokenVerifier | None = None
) -> Principal | None:
    """The caller of a request: from the middleware, or verified here if it is not installed.

    ``auth`` defaults to ``app.state.authmesh``.

    Raises:
        AuthHTTPException: a bad token, a malformed header, or (``required``) no token.
    """
    principal = known_principal(connection, auth)
    if principal is not None:
        return principal
    scope = connection.scope
    realm = scope.get(CHECKED)
    if realm is None:
        # No middleware ran: authenticate here.
        if auth is None:
            auth = find_auth(connection)
        try:
            # The raw ASGI list, as the middleware reads it: building Starlette's
            # Headers view costs more than the check of a known token.
            credentials = read_credentials(scope)
            if credentials is not None:
                scheme, token = credentials
                principal = await auth.averify(token)
                check_presentation(auth, principal, scheme, scope)
                scope["auth"] = scope["user"] = principal
                return principal
        except (TokenRejected, BearerError) as exc:
            raise AuthHTTPException(exc, auth.config.effective_realm) from None
        # The realm only on the way to an error: a request that passes never needs it.
        realm = auth.config.effective_realm
    if required:
        raise AuthHTTPException(MissingToken(), realm)
    return None


def known_principal(
    connection: HTTPConnection, auth: AsyncTokenVerifier | None = None
) -> Principal | None:
    """The caller when known without awaiting anything: set by the middleware, or the
    bearer of a token the verifier has cached (after the checks of every request);
    ``None``: :func:`principal_from_connection` decides.

    Raises:
        AuthHTTPException: the cached token is revoked now, the feed is stale, or the
            token came without the proof its binding asks for.
    """
    scope = connection.scope
    principal = scope.get("auth")
    if isinstance(principal, Principal):
        return principal
    if scope.get(CHECKED) is not None:
        return None  # the middleware ran and found no token
    if auth is None:
        # find_auth's first step written out (see cached_principal for why).
        attributes = getattr(getattr(scope.get("app"), "state", None), "_state", None)
        auth = attributes.get(STATE_ATTR) if isinstance(attributes, dict) else None
        if auth is None:
            auth = find_auth(connection)
    try:
        principal = cached_principal(scope, auth)
    except (TokenRejected, BearerError) as exc:
        raise AuthHTTPException(exc, auth.config.effective_realm) from None
    if principal is not None:
        scope["auth"] = scope["user"] = principal
    return principal


def find_auth(connection: HTTPConnection) -> AsyncTokenVerifier:
    """The ``ServiceAuth`` stored on the app by an ``install`` helper.

    Raises:
        RuntimeError: authmesh was not set up on this app (an operator error: a 500).
    """
    state = getattr(connection.scope.get("app"), "state", None)
    # Starlette's State keeps its attributes in the dict ``_state`` behind __getattr__:
    # reading the dict skips the ordinary lookup that fails first and the Python-level
    # __getattr__ (together most of getattr's cost on every request).
    attributes = getattr(state, "_state", None)
    if isinstance(attributes, dict):
        auth = attributes.get(STATE_ATTR)
    else:
        auth = getattr(state, STATE_ATTR, None)
    if auth is None:
        raise RuntimeError(
            "authmesh is not set up on this app: call install(app, config_or_auth) "
            "from authmesh.service.fastapi (or .starlette)"
        )
    return auth  # type: ignore[no-any-return]


def realm_of(connection: HTTPConnection) -> str:
    """The realm for challenges about this connection."""
    realm = connection.scope.get(CHECKED)
    if isinstance(realm, str):
        return realm
    return find_auth(connection).config.effective_realm
