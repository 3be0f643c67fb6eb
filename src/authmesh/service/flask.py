"""Flask: the ``AuthMesh`` extension and its ``@auth.require(...)`` decorator.

::

    auth = install(app, ServiceConfig(issuer=..., audience="orders", client_id=..., ...))

    @app.get("/orders")
    @auth.require(scopes="orders:read")
    def orders():
        return {"user": g.principal.subject}

Every request that sends a bearer token is verified before the view (a bad
token is a 401 even on a public view); the principal is ``flask.g.principal``
(``None`` without a token). The revocation feed is followed by a daemon thread.
``install(app, config_or_auth)`` is ``AuthMesh(app, config_or_auth)``, the entry
shape of every adapter; the extension also supports ``init_app`` for app factories.
Failures become responses in one place, :meth:`AuthMesh.error_response`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar, Unpack, cast

from flask import Flask, Response, g, request

from authmesh.jose.errors import TokenRejected
from authmesh.rfc6750 import parse_credentials
from authmesh.service._ssf_push_http import SsfPushWSGIMiddleware
from authmesh.service.bearer import challenge_for
from authmesh.service.config import ServiceConfig
from authmesh.service.errors import BearerError, MissingToken
from authmesh.service.operations import MetricsPage, Probe, liveness, operation_paths, readiness
from authmesh.service.principal import AccessRule, AccessRuleArgs, Principal
from authmesh.service.service_auth import ServiceAuth

__all__ = ["AuthMesh", "current_principal", "install", "mount_operations"]

F = TypeVar("F", bound=Callable[..., Any])


def current_principal() -> Principal | None:
    """The caller of the current request, or ``None``."""
    return cast(Principal | None, g.get("principal"))


class AuthMesh:
    """The Flask extension.

    Args:
        app: the Flask app (or call :meth:`init_app` later).
        config_or_auth: a :class:`ServiceConfig`, or a ready :class:`ServiceAuth`.
        start: fetch the keys and start the feed thread in :meth:`init_app`.
        wait: seconds to wait for the first feed catch-up when starting.
    """

    def __init__(
        self,
        app: Flask | None = None,
        config_or_auth: ServiceConfig | ServiceAuth | None = None,
        *,
        start: bool = True,
        wait: float = 2.0,
    ) -> None:
        if config_or_auth is None:
            raise TypeError("AuthMesh needs a ServiceConfig or a ServiceAuth")
        self.auth = ServiceAuth.of(config_or_auth)
        self._start = start
        self._wait = wait
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the hooks and error handlers (and the Shared Signals push endpoint with
        ``revocation_transport="ssf-push"``); start the feed thread if asked."""
        app.extensions["authmesh"] = self
        app.before_request(self._authenticate)
        if self.auth.ssf_push is not None:
            # Ahead of Flask and its bearer check: the transmitter sends the stream's secret.
            app.wsgi_app = SsfPushWSGIMiddleware(app.wsgi_app, self.auth.ssf_push)  # type: ignore[method-assign]
        app.register_error_handler(TokenRejected, self.error_response)
        app.register_error_handler(BearerError, self.error_response)
        if self._start:
            self.auth.start(wait=self._wait)

    def stop(self) -> None:
        """Stop the feed thread and close the HTTP client."""
        self.auth.stop()

    def health(self) -> dict[str, Any]:
        """:meth:`ServiceAuth.health`."""
        return self.auth.health()

    def error_response(self, error: Exception) -> Response:
        """The RFC 6750 §3 response for a failure (the only place Flask failures become HTTP)."""
        assert isinstance(error, TokenRejected | BearerError)
        challenge = challenge_for(error, self.auth.realm)
        return Response(challenge.body, status=challenge.status, headers=challenge.headers)

    def _authenticate(self) -> None:
        g.principal = None
        credentials = parse_credentials(request.headers.getlist("Authorization"))
        if credentials is not None:
            scheme, token = credentials
            principal = self.auth.verify(token)
            if scheme != "bearer" or principal.dpop_jkt is not None:
                self.auth.check_presentation(
                    principal,
                    scheme,
                    request.headers.getlist("DPoP"),
                    request.method,
                    lambda: request.base_url,
                )
            g.principal = principal

    def require(self, **rule: Unpack[AccessRuleArgs]) -> Callable[[F], F]:
        """Decorator: a valid token (401 otherwise) with these roles and scopes (403 otherwise),
        from a sign-in of level ``acr`` at most ``max_age`` seconds old (else 401
        ``insufficient_user_authentication``, RFC 9470).

        ``delegation`` and ``actors``: as :func:`authmesh.service.fastapi.require`.
        """

        access = AccessRule.of(**rule)

        def decorator(view: F) -> F:
            @functools.wraps(view)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                principal = current_principal()
                if principal is None:
                    raise MissingToken()
                access.check(principal)
                return view(*args, **kwargs)

            return cast(F, wrapper)

        return decorator

    @property
    def required(self) -> Callable[[F], F]:
        """Decorator: any valid token (``@auth.required``)."""
        return self.require()


def install(
    app: Flask,
    config_or_auth: ServiceConfig | ServiceAuth,
    *,
    start: bool = True,
    wait: float = 2.0,
) -> AuthMesh:
    """Set authmesh up on a Flask app: ``AuthMesh(app, config_or_auth)``, returned.

    The arguments are :class:`AuthMesh`'s.
    """
    return AuthMesh(app, config_or_auth, start=start, wait=wait)


def mount_operations(
    app: Flask,
    auth: AuthMesh | ServiceAuth | None = None,
    *,
    prefix: str = "",
    metrics: bool = True,
) -> None:
    """Serve ``/healthz``, ``/readyz`` and ``/metrics`` on a Flask app.

    ::

        auth = install(app, config)
        mount_operations(app, auth)

    See :mod:`authmesh.service.operations` for the answers.

    Args:
        app: the Flask app.
        auth: the :class:`AuthMesh` ``install`` returned, or a :class:`ServiceAuth`
            (default: the extension registered on the app).
        prefix: put the three paths under this one (``"/ops"``).
        metrics: serve ``/metrics`` (needs ``prometheus_client``).

    Raises:
        ConfigError: ``metrics`` without ``prometheus_client``, or a bad ``prefix``.
        RuntimeError: no ``auth`` given and the extension is not set up on the app.
    """
    if auth is None:
        auth = app.extensions.get("authmesh")
        if auth is None:
            raise RuntimeError("mount_operations needs install(app, ...) first, or auth=")
    service = auth.auth if isinstance(auth, AuthMesh) else auth
    healthz, readyz, metrics_path = operation_paths(prefix)

    def answer(probe: Probe) -> Response:
        return Response(
            json.dumps(probe.body),
            status=probe.status,
            mimetype="application/json",
            headers={"Cache-Control": "no-store"},
        )

    app.add_url_rule(healthz, "authmesh_healthz", lambda: answer(liveness()))
    app.add_url_rule(readyz, "authmesh_readyz", lambda: answer(readiness(service)))
    if metrics:
        page = MetricsPage(service)
        app.add_url_rule(
            metrics_path,
            "authmesh_metrics",
            lambda: Response(page.render(), content_type=page.content_type),
        )
