"""Plain WSGI: ``install(app, config_or_auth)`` wraps any WSGI app in a middleware
that authenticates bearer tokens.

::

    app = install(app, ServiceConfig(issuer=..., audience="orders", client_id=..., ...))

The middleware sets ``environ["authmesh.principal"]`` to the :class:`Principal` (``None``
without a token); a bad token or malformed header is refused with the RFC 6750
§3 answer of :func:`wsgi_error`, the one place WSGI failures become HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any, Protocol
from wsgiref.util import request_uri

from authmesh.jose.errors import TokenRejected
from authmesh.rfc6750 import parse_credentials
from authmesh.service._ssf_push_http import SsfPushWSGIMiddleware
from authmesh.service.bearer import challenge_for
from authmesh.service.config import ServiceConfig
from authmesh.service.errors import BearerError, DpopRequired, MissingToken
from authmesh.service.operations import MetricsPage, liveness, operation_paths, readiness
from authmesh.service.principal import Principal
from authmesh.service.service_auth import ServiceAuth

__all__ = [
    "ENVIRON_KEY",
    "BearerAuthWSGIMiddleware",
    "OperationsWSGIMiddleware",
    "TokenVerifier",
    "install",
    "mount_operations",
    "wsgi_error",
]

ENVIRON_KEY = "authmesh.principal"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class TokenVerifier(Protocol):
    """A :class:`ServiceAuth` or a :class:`Verifier`."""

    config: ServiceConfig

    def verify(self, token: str) -> Principal:
        """Verify a token."""
        ...


def wsgi_error(
    error: TokenRejected | BearerError, realm: str, start_response: StartResponse
) -> list[bytes]:
    """Answer a failure with its RFC 6750 §3 status, challenge and JSON body."""
    challenge = challenge_for(error, realm)
    body = challenge.body
    status = f"{challenge.status} {HTTPStatus(challenge.status).phrase}"
    start_response(status, [*challenge.headers, ("Content-Length", str(len(body)))])
    return [body]


class BearerAuthWSGIMiddleware:
    """Authenticate the bearer token of every request to a WSGI app.

    Args:
        app: the wrapped WSGI app.
        auth: a :class:`ServiceAuth` (started) or a :class:`Verifier`.
        required: also refuse requests without a token.
    """

    def __init__(self, app: WSGIApp, auth: TokenVerifier, *, required: bool = False) -> None:
        self.app = app
        self.auth = auth
        self.required = required
        self.realm = auth.config.effective_realm
        endpoint = getattr(auth, "ssf_push", None)
        #: The Shared Signals push endpoint (``revocation_transport="ssf-push"``), served
        #: ahead of the bearer check: the transmitter sends the stream's secret.
        self.ssf_push = None if endpoint is None else SsfPushWSGIMiddleware(app, endpoint)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self.ssf_push is not None and environ.get("PATH_INFO") == self.ssf_push.endpoint.path:
            return self.ssf_push.answer(environ, start_response)
        header = environ.get("HTTP_AUTHORIZATION")
        principal = None
        try:
            credentials = parse_credentials([] if header is None else [header])
            if credentials is not None:
                scheme, token = credentials
                principal = self.auth.verify(token)
                if scheme != "bearer" or principal.dpop_jkt is not None:
                    _present(self.auth, principal, scheme, environ)
            elif self.required:
                raise MissingToken()
        except (TokenRejected, BearerError) as exc:
            return wsgi_error(exc, self.realm, start_response)
        environ[ENVIRON_KEY] = principal
        return self.app(environ, start_response)


def _present(auth: Any, principal: Principal, scheme: str, environ: dict[str, Any]) -> None:
    """Check a DPoP presentation (RFC 9449 §7); WSGI joins repeated headers with commas."""
    checker = getattr(auth, "check_presentation", None)
    if checker is None:
        raise DpopRequired("this service does not accept DPoP-bound tokens")
    proof = environ.get("HTTP_DPOP")
    checker(
        principal,
        scheme,
        [] if proof is None else [proof],
        environ.get("REQUEST_METHOD", "GET"),
        lambda: request_uri(environ, include_query=False),
    )


def install(
    app: WSGIApp,
    config_or_auth: ServiceConfig | ServiceAuth,
    *,
    required: bool = False,
    start: bool = True,
    wait: float = 2.0,
) -> BearerAuthWSGIMiddleware:
    """Wrap a WSGI app: ``app = install(app, config_or_auth)``.

    Args:
        app: the WSGI app.
        config_or_auth: the service's :class:`ServiceConfig`, or a ready :class:`ServiceAuth`.
        required: also refuse requests without a token.
        start: fetch the keys and start the feed thread now.
        wait: seconds to wait for the first feed catch-up when starting.

    Returns:
        the wrapped app; its ``auth`` is the :class:`ServiceAuth` (for health and ``stop``).
    """
    auth = ServiceAuth.of(config_or_auth)
    if start:
        auth.start(wait=wait)
    return BearerAuthWSGIMiddleware(app, auth, required=required)


class OperationsWSGIMiddleware:
    """Answer ``/healthz``, ``/readyz`` and ``/metrics`` ahead of a WSGI app (no token needed).

    See :mod:`authmesh.service.operations` for the answers.
    """

    def __init__(
        self, app: WSGIApp, auth: ServiceAuth, *, prefix: str = "", metrics: bool = True
    ) -> None:
        self.app = app
        self.auth = auth
        self.healthz, self.readyz, self.metrics = operation_paths(prefix)
        self.page = MetricsPage(auth) if metrics else None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self.app(environ, start_response)
        if path == self.healthz or path == self.readyz:
            probe = liveness() if path == self.healthz else readiness(self.auth)
            body = json.dumps(probe.body).encode()
            content_type = "application/json"
            status = probe.status
        elif path == self.metrics and self.page is not None:
            body, content_type, status = self.page.render(), self.page.content_type, 200
        else:
            return self.app(environ, start_response)
        headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ]
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [body]


def mount_operations(
    app: WSGIApp,
    auth: ServiceAuth | None = None,
    *,
    prefix: str = "",
    metrics: bool = True,
) -> OperationsWSGIMiddleware:
    """Wrap a WSGI app to serve the operations endpoints: ``app = mount_operations(app)``.

    Args:
        app: the app ``install`` returned (or any WSGI app, with ``auth``).
        auth: the :class:`ServiceAuth` (default: ``app.auth`` of an installed app).
        prefix: put the three paths under this one (``"/ops"``).
        metrics: serve ``/metrics`` (needs ``prometheus_client``).

    Raises:
        ConfigError: ``metrics`` without ``prometheus_client``, or a bad ``prefix``.
        RuntimeError: no ``auth``, and ``app`` is not an installed app.
    """
    if auth is None:
        auth = getattr(app, "auth", None)
        if not isinstance(auth, ServiceAuth):
            raise RuntimeError("mount_operations needs the app install() returned, or auth=")
    return OperationsWSGIMiddleware(app, auth, prefix=prefix, metrics=metrics)
