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
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Container
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from authmesh.jose.errors import TokenRejected, VerifierUnavailable
from authmesh.rfc6750 import parse_credentials
from authmesh.service._live_asgi import HttpWatch, serve_websocket_until_revoked
from authmesh.service._ssf_push_http import SsfPushASGIMiddleware
from authmesh.service.bearer import challenge_for
from authmesh.service.config import ServiceConfig
from authmesh.service.errors import BearerError, DpopRequired, MissingToken
from authmesh.service.operations import MetricsPage, liveness, operation_paths, readiness
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
    "mount_operations",
    "principal_from_connection",
    "realm_of",
]

#: scope key set by BearerAuthMiddleware (to its realm) once it authenticated the connection.
CHECKED = "authmesh.checked"
#: app.state attribute holding the ServiceAuth (set by the adapters' install helpers).
STATE_ATTR = "authmesh"
#: Probes and scrapes are not traced (``otel``): they would drown the requests that matter.
UNTRACED_URLS = "/healthz,/readyz,/metrics"


class AsyncTokenVerifier(Protocol):
    """What the middleware needs: a :class:`ServiceAuth` or a :class:`Verifier`."""

    config: ServiceConfig

    async def averify(self, token: str) -> Principal:
        """Verify a token."""
        ...


class AuthHTTPException(HTTPException):
    """An authentication/authorization failure on its way to :func:`error_response`."""

    def __init__(self, error: TokenRejected | BearerError, realm: str) -> None:
        self.error = error
        self.realm = realm
        self.challenge = challenge_for(error, realm)
        super().__init__(
            status_code=self.challenge.status,
            detail=self.challenge.description,
            headers={k: v for k, v in self.challenge.headers if k != "Content-Type"},
        )


def error_response(error: TokenRejected | BearerError | AuthHTTPException, realm: str) -> Response:
    """The RFC 6750 §3 response for a failure: status, challenge and JSON body."""
    challenge = (
        error.challenge if isinstance(error, AuthHTTPException) else (challenge_for(error, realm))
    )
    return Response(
        challenge.body,
        status_code=challenge.status,
        headers=dict(challenge.headers),
        media_type="application/json",
    )


def install_error_handlers(app: Any, realm: str) -> None:
    """Make ``app`` answer our exceptions with :func:`error_response` (Starlette or FastAPI)."""

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TokenRejected | BearerError | AuthHTTPException)
        return error_response(exc, realm)

    for exc_type in (AuthHTTPException, TokenRejected, BearerError):
        app.add_exception_handler(exc_type, handler)


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


class OperationsMiddleware:
    """Pure ASGI middleware answering the operations paths (see :func:`mount_operations`)."""

    def __init__(
        self,
        app: ASGIApp,
        auth: ServiceAuth,
        paths: tuple[str, str, str],
        page: MetricsPage | None,
    ) -> None:
        self.app = app
        self.auth = auth
        self.healthz, self.readyz, self.metrics = paths
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        response: Response
        if path == self.healthz or path == self.readyz:
            probe = liveness() if path == self.healthz else readiness(self.auth)
            response = JSONResponse(
                probe.body, status_code=probe.status, headers={"Cache-Control": "no-store"}
            )
        elif path == self.metrics and self.page is not None:
            response = Response(self.page.render(), media_type=self.page.content_type)
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


def _authorization(scope: Scope) -> list[str]:
    # A plain loop: a comprehension is a function call of its own before Python 3.12.
    values = []
    for key, value in scope["headers"]:
        if key == b"authorization":
            values.append(value.decode("latin-1"))
    return values


def _credentials(scope: Scope, auth: Any) -> tuple[str, str] | None:
    """``(scheme, token)`` of the request, exactly as :func:`parse_credentials` reads it.

    A token the verifier holds in its cache passed verification, so it is base64url
    and dots only: ``<scheme> <token>`` with such a token splits there, and the
    whitespace scan of the ~1 kB header (the dearest step of checking a known token)
    is skipped. Anything else takes the full parse.
    """
    values = _authorization(scope)
    if len(values) == 1:
        scheme, _, token = values[0].partition(" ")
        scheme = scheme.lower()
        if (scheme == "bearer" or scheme == "dpop") and token in _known_tokens(auth):
            return scheme, token
    return parse_credentials(values)


def _known_tokens(auth: Any) -> Container[str]:
    """The verified-token cache of a :class:`ServiceAuth` or :class:`Verifier`; else empty."""
    return getattr(getattr(auth, "verifier", auth), "cache", ())  # type: ignore[no-any-return]


def _present(auth: Any, principal: Principal, scheme: str, scope: Scope) -> None:
    """Check how the token came (DPoP, RFC 9449 §7); a plain bearer token costs one test."""
    if scheme == "bearer" and principal.dpop_jkt is None:
        return
    checker = getattr(auth, "check_presentation", None)
    if checker is None:
        raise DpopRequired("this service does not accept DPoP-bound tokens")
    proofs = [v.decode("latin-1") for k, v in scope["headers"] if k == b"dpop"]
    method = "GET" if scope["type"] == "websocket" else scope["method"]
    checker(principal, scheme, proofs, method, lambda: _request_url(scope))


def _request_url(scope: Scope) -> str:
    """The URL the client called, without query (what a DPoP proof's ``htu`` names)."""
    host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
    if host is None:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme"))
    return f"{scheme}://{host}{scope.get('root_path', '')}{scope['path']}"


class BearerAuthMiddleware:
    """Authenticate bearer tokens for every HTTP/WebSocket connection.

    Args:
        app: the wrapped ASGI app.
        auth: a :class:`ServiceAuth` (or a :class:`Verifier`).
        required: also refuse requests without a token (401, no error code).
        realm: the challenge realm (default: the config's).
    """

    def __init__(
        self,
        app: ASGIApp,
        auth: AsyncTokenVerifier,
        *,
        required: bool = False,
        realm: str | None = None,
    ) -> None:
        self.app = app
        self.auth = auth
        self.required = required
        self.realm = realm or auth.config.effective_realm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        principal = None
        try:
            credentials = _credentials(scope, self.auth)
            if credentials is not None:
                scheme, token = credentials
                principal = await self.auth.averify(token)
                _present(self.auth, principal, scheme, scope)
            elif self.required:
                raise MissingToken()
        except (TokenRejected, BearerError) as exc:
            if scope["type"] == "websocket":
                # Before the handshake completes this makes the server answer 403.
                await send(_websocket_refusal(exc))
                return
            await error_response(exc, self.realm)(scope, receive, send)
            return
        scope["auth"] = principal
        scope["user"] = principal
        scope[CHECKED] = self.realm
        # A ServiceAuth follows the feed: open connections end when their token is revoked.
        live = getattr(self.auth, "live", None)
        if principal is None or live is None:
            await self.app(scope, receive, send)
            return
        revoked_now = self.auth.is_revoked  # type: ignore[attr-defined]
        if scope["type"] == "websocket":
            await serve_websocket_until_revoked(
                self.app, scope, receive, send, principal.claims, live, revoked_now
            )
            return
        watch = HttpWatch(receive, principal.claims, live, revoked_now)
        try:
            await self.app(scope, watch.receive, send)
        finally:
            if watch.connection is not None:  # only a request that streamed was watched
                await watch.finish(send)


def _websocket_refusal(exc: TokenRejected | BearerError) -> dict[str, Any]:
    """The close message refusing a WebSocket: 1013 "try again later" when the token
    cannot be checked right now (RFC 6455 §7.4.2 registry), else 1008 policy violation."""
    if isinstance(exc, VerifierUnavailable):
        return {"type": "websocket.close", "code": 1013, "reason": "try again later"}
    return {"type": "websocket.close", "code": 1008, "reason": "unauthorized"}


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
    scope = connection.scope
    principal = scope.get("auth")
    if isinstance(principal, Principal):
        return principal
    realm = scope.get(CHECKED)
    if realm is None:
        # No middleware ran: authenticate here.
        if auth is None:
            auth = find_auth(connection)
        try:
            # The raw ASGI list, as the middleware reads it: building Starlette's
            # Headers view costs more than the check of a known token.
            credentials = _credentials(scope, auth)
            if credentials is not None:
                scheme, token = credentials
                principal = await auth.averify(token)
                _present(auth, principal, scheme, scope)
                scope["auth"] = scope["user"] = principal
                return principal
        except (TokenRejected, BearerError) as exc:
            raise AuthHTTPException(exc, auth.config.effective_realm) from None
        # The realm only on the way to an error: a request that passes never needs it.
        realm = auth.config.effective_realm
    if required:
        raise AuthHTTPException(MissingToken(), realm)
    return None


def find_auth(connection: HTTPConnection) -> AsyncTokenVerifier:
    """The ``ServiceAuth`` stored on the app by an ``install`` helper.

    Raises:
        RuntimeError: authmesh was not set up on this app (an operator error: a 500).
    """
    state = getattr(connection.scope.get("app"), "state", None)
    try:
        # Starlette's State keeps its attributes in a dict behind __getattr__: calling
        # that directly skips the ordinary lookup that fails first (most of getattr's cost).
        auth = state.__getattr__(STATE_ATTR)
    except AttributeError:
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
