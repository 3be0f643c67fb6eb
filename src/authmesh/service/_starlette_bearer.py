"""Starlette / ASGI: reading and checking the token a connection presents, and
:class:`BearerAuthMiddleware`, which does it once for every HTTP and WebSocket connection.

The middleware is pure ASGI, not ``BaseHTTPMiddleware``: no extra task or thread
per request. A connection it authenticated carries its realm under :data:`CHECKED`.
"""

from __future__ import annotations

from typing import Any, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from authmesh.jose.errors import TokenRejected, VerifierUnavailable
from authmesh.rfc6750 import parse_credentials
from authmesh.service._live_asgi import HttpWatch, serve_websocket_until_revoked
from authmesh.service._starlette_errors import error_response
from authmesh.service.config import ServiceConfig
from authmesh.service.errors import BearerError, DpopRequired, MissingToken
from authmesh.service.principal import Principal

__all__ = [
    "CHECKED",
    "AsyncTokenVerifier",
    "BearerAuthMiddleware",
    "cached_principal",
    "check_presentation",
    "read_credentials",
]

#: scope key set by BearerAuthMiddleware (to its realm) once it authenticated the connection.
CHECKED = "authmesh.checked"


class AsyncTokenVerifier(Protocol):
    """What the middleware needs: a :class:`ServiceAuth` or a :class:`Verifier`."""

    config: ServiceConfig

    async def averify(self, token: str) -> Principal:
        """Verify a token."""
        ...


def _authorization(scope: Scope) -> list[str]:
    # A plain loop: a comprehension is a function call of its own before Python 3.12.
    values = []
    for key, value in scope["headers"]:
        if key == b"authorization":
            values.append(value.decode("latin-1"))
    return values


def read_credentials(scope: Scope) -> tuple[str, str] | None:
    """``(scheme, token)`` of the request's ``Authorization`` header (:func:`parse_credentials`)."""
    return parse_credentials(_authorization(scope))


def cached_principal(scope: Scope, auth: Any) -> Principal | None:
    """The caller when the verifier holds the request's token, after the checks of every
    request (revocation, feed freshness, how the token came); ``None``: no token, or one
    the verifier does not hold, and :func:`read_credentials` with a full verification decide.

    A token the verifier holds passed verification, so it is base64url and dots only:
    ``<scheme> <token>`` with such a token splits at its one space, and the whitespace
    scan of the ~1 kB header (the dearest step of checking a known token) is skipped.
    Any other header, well formed or not, misses the cache and takes the full parse.

    Raises:
        TokenRejected: the held token is revoked now, or the feed is stale.
        BearerError: the token came without the proof its binding asks for.
    """
    # Written out, not through _authorization and check_presentation: this runs on every
    # request, and on a server busy with other connections each call costs about a
    # microsecond more than the bytecode it saves (bench part ``rps``).
    # A ServiceAuth's verifier, or a Verifier itself: straight to it, one call fewer.
    cached = getattr(getattr(auth, "verifier", auth), "cached", None)
    if cached is None:
        return None
    header = None
    for key, value in scope["headers"]:
        if key == b"authorization":
            if header is not None:
                return None  # two headers: the full parse refuses them
            header = value
    if header is None:
        return None
    scheme, _, token = header.decode("latin-1").partition(" ")
    scheme = scheme.lower()
    if scheme != "bearer" and scheme != "dpop":
        return None
    principal: Principal | None = cached(token)
    if principal is not None and (scheme != "bearer" or principal.dpop_jkt is not None):
        check_presentation(auth, principal, scheme, scope)
    return principal


def check_presentation(auth: Any, principal: Principal, scheme: str, scope: Scope) -> None:
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
        try:
            principal = cached_principal(scope, self.auth)
            if principal is None:
                credentials = read_credentials(scope)
                if credentials is not None:
                    scheme, token = credentials
                    principal = await self.auth.averify(token)
                    check_presentation(self.auth, principal, scheme, scope)
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
