"""The ASGI app of the auth server: routes, error mapping, lifespan, headers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import authmesh
from authmesh.errors import BearerError
from authmesh.jose import TokenRejected
from authmesh.jose.policy import Clock
from authmesh.rfc6750 import (
    Challenge,
    basic_challenge,
    bearer_challenge,
    invalid_token_challenge,
)
from authmesh.server import audit
from authmesh.server.body_limit import BodyLimit, quiet_client_disconnects
from authmesh.server.config import ServerSettings
from authmesh.server.context import ServerContext
from authmesh.server.errors import OAuthError
from authmesh.server.metrics import ServerMetrics
from authmesh.server.openapi import describe_api
from authmesh.server.readiness import Readiness
from authmesh.server.retention import RetentionJob
from authmesh.server.routes import (
    account,
    account_page,
    account_sessions,
    admin,
    admin_console,
    admin_console_ops,
    admin_keys,
    console,
    feed,
    health,
    logout,
    mfa_account,
    mfa_admin,
    mfa_signin,
    oauth,
    signin,
    ssf,
    static,
    wellknown,
)
from authmesh.server.routes.common import NO_STORE
from authmesh.server.routes.console_common import install_console_errors
from authmesh.server.ssf.push import PushWorker
from authmesh.server.unavailable import DatabaseOutageGuard
from authmesh.store.outages import database_outage, describe_outage

__all__ = ["create_app"]

log = logging.getLogger(__name__)
_MAINTENANCE_SECONDS = 60.0


class SecurityHeaders:
    """Pure ASGI middleware adding the usual security headers to every response."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.extra = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
        ]
        if hsts:
            self.extra.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                path = scope.get("path", "")
                extra = self.extra
                own = list(message.get("headers", []))
                # The Swagger page loads its own assets; HTML pages set their own policy.
                if path.startswith("/docs") or any(
                    name.lower() == b"content-security-policy" for name, _ in own
                ):
                    extra = [h for h in extra if h[0] != b"content-security-policy"]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RejectNul:
    """Pure ASGI middleware: a NUL in the path or query is a 400 before any route runs.

    PostgreSQL text cannot hold NUL, so a path or query parameter carrying one
    would fail in the database with a 500 (and SQLite would store it).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query: bytes = scope.get("query_string", b"")
            if "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query:
                response = JSONResponse(
                    _error_body("invalid_request", "the URL must not contain NUL characters"),
                    status_code=400,
                    headers=NO_STORE,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _error_body(error: str, description: str) -> dict[str, str]:
    return {"error": error, "error_description": description}


def _challenge_response(challenge: Challenge) -> JSONResponse:
    # The body always names an OAuth error code: a missing token reads as invalid_token.
    headers = dict(NO_STORE)
    if challenge.www_authenticate is not None:
        headers["WWW-Authenticate"] = challenge.www_authenticate
    return JSONResponse(
        _error_body(challenge.error or "invalid_token", challenge.description),
        status_code=challenge.status,
        headers=headers,
    )


def _install_error_handlers(app: FastAPI, realm: str) -> None:
    @app.exception_handler(OAuthError)
    async def oauth_error(_request: Request, exc: OAuthError) -> JSONResponse:
        headers = {**NO_STORE, **exc.headers()}
        if exc.asks_for_basic:
            headers["WWW-Authenticate"] = basic_challenge(realm)
        return JSONResponse(
            _error_body(exc.error, exc.description), status_code=exc.status, headers=headers
        )

    @app.exception_handler(BearerError)
    async def bearer_error(_request: Request, exc: BearerError) -> JSONResponse:
        return _challenge_response(bearer_challenge(exc, realm))

    @app.exception_handler(TokenRejected)
    async def token_rejected(_request: Request, exc: TokenRejected) -> JSONResponse:
        return _challenge_response(invalid_token_challenge(exc.message, realm))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}"
            for err in exc.errors()[:5]
        )
        return JSONResponse(
            _error_body("invalid_request", problems[:500] or "invalid request"),
            status_code=400,
            headers=NO_STORE,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = {404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "invalid_request"
        )
        return JSONResponse(
            _error_body(error, str(exc.detail)),
            status_code=exc.status_code,
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(Exception)
    async def server_error(_request: Request, exc: Exception) -> JSONResponse:
        # Logged here with the type only: a traceback could carry form values.
        log.error("unhandled %s on the auth server", type(exc).__name__)
        return JSONResponse(
            _error_body("server_error", "the server could not complete the request"),
            status_code=500,
            headers=NO_STORE,
        )


async def _maintenance(ctx: ServerContext) -> None:
    """Scheduled key rotation (pruning is the retention job's)."""
    while True:
        await asyncio.sleep(_MAINTENANCE_SECONDS)
        try:
            rotated = await ctx.keys.rotate_if_due(ctx.settings.key_rotation_interval)
            if rotated is not None:
                async with ctx.db.transaction() as session:
                    await audit.record(ctx, session, "key_rotate", kid=rotated.kid, scheduled=True)
        except Exception as exc:
            outage = database_outage(exc)
            if outage is None:
                log.warning("maintenance pass failed", exc_info=True)
            else:  # the next pass retries; a traceback would say nothing more
                log.warning("maintenance pass skipped: %s", describe_outage(outage))


def create_app(
    settings: ServerSettings, *, clock: Clock = time.time, context: ServerContext | None = None
) -> FastAPI:
    """Build the auth server app; the database is opened in the lifespan."""
    ctx = context or ServerContext.build(settings, clock=clock)
    metrics = ServerMetrics()
    readiness = Readiness(ctx)
    pusher = PushWorker(ctx)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        await ctx.start(seal_plaintext_keys=True)
        await ctx.hub.start()
        await pusher.start()
        task = asyncio.create_task(_maintenance(ctx))
        pruning = RetentionJob(ctx)
        pruning.start()
        _app.state.retention = pruning
        try:
            yield {}
        finally:
            await pruning.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await pusher.stop()
            await readiness.close()
            await ctx.close()

    # Swagger UI and ReDoc from files in the package, not from a CDN.
    app = FastAPIOffline(
        title="authmesh auth server",
        version=authmesh.__version__,
        description="OAuth 2.0 token endpoint, JWKS, revocation feed and admin API.",
        lifespan=lifespan,
        static_url="/docs/assets",
        swagger_ui_parameters={"persistAuthorization": False},
    )
    app.state.context = ctx
    app.state.metrics = metrics
    # Routes are matched in the order they are included, router by router: the token
    # endpoint and the sign-in pages, which carry the load, come first.
    for module in (oauth, signin):
        app.include_router(module.router)
    for mfa_module in (mfa_signin, mfa_account, mfa_admin):
        app.include_router(mfa_module.router)
    app.state.readiness = readiness
    for module in (wellknown, logout, account, admin, feed, ssf, health, static):
        app.include_router(module.router)
    for module in (account_sessions, admin_keys):
        app.include_router(module.router)
    for module in (console, account_page, admin_console, admin_console_ops):
        app.include_router(module.router)
    _install_error_handlers(app, settings.realm)
    install_console_errors(app)
    quiet_client_disconnects(app)
    describe_api(app)
    # Innermost of the middleware, so its 503s carry the security headers too.
    app.add_middleware(DatabaseOutageGuard, db=ctx.db)
    app.add_middleware(RejectNul)
    app.add_middleware(BodyLimit, max_bytes=settings.http_max_body_bytes)
    app.add_middleware(SecurityHeaders, hsts=settings.tls_cert is not None)
    if settings.otel:
        from authmesh.server.tracing import instrument_server

        instrument_server(app, ctx.db)
    return app
