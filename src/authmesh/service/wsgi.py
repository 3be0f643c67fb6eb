"""Plain WSGI: ``install(app, config_or_auth)`` wraps any WSGI app in a middleware
that authenticates bearer tokens.

::

    app = install(app, ServiceConfig(issuer=..., audience="orders", client_id=..., ...))

The middleware sets ``environ["authmesh.principal"]`` to the :class:`Principal` (``None``
without a token); a bad token or malformed header is refused with the RFC 6750
§3 answer of :func:`wsgi_error`, the one place WSGI failures become HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any, Protocol

from authmesh.jose.errors import TokenRejected
from authmesh.service.bearer import challenge_for, parse_authorization
from authmesh.service.config import ServiceConfig
from authmesh.service.errors import BearerError, MissingToken
from authmesh.service.principal import Principal
from authmesh.service.service_auth import ServiceAuth

__all__ = ["ENVIRON_KEY", "BearerAuthWSGIMiddleware", "TokenVerifier", "install", "wsgi_error"]

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

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        header = environ.get("HTTP_AUTHORIZATION")
        principal = None
        try:
            token = parse_authorization([] if header is None else [header])
            if token is not None:
                principal = self.auth.verify(token)
            elif self.required:
                raise MissingToken()
        except (TokenRejected, BearerError) as exc:
            return wsgi_error(exc, self.realm, start_response)
        environ[ENVIRON_KEY] = principal
        return self.app(environ, start_response)


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
