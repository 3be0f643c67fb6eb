"""A small, faithful auth server for the SDK's tests (docs/architecture.md).

It serves discovery, JWKS (with ``Cache-Control: max-age``), the token endpoint
for client_credentials, and the revocation feed: ``GET /revocations?after=``
and ``GET /revocations/stream`` (SSE, resuming after ``Last-Event-ID``, with
heartbeats), both behind HTTP Basic client authentication. Tokens are signed
with :mod:`authmesh.jose`. Its :class:`IssuerState` outlives restarts, so a
test can stop the server, write revocations, and start it again.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote_plus

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from authmesh.jose import Key, sign_jwt
from authmesh.revocation import RevocationEvent

from .servers import UvicornThread

__all__ = ["FakeIssuer", "IssuerState", "RegisteredClient"]


@dataclass
class RegisteredClient:
    secret: str
    scopes: frozenset[str] = frozenset()
    audiences: tuple[str, ...] = ()


@dataclass
class Counters:
    discovery: int = 0
    jwks: int = 0
    tokens: int = 0
    pages: int = 0
    streams: int = 0
    unauthorized: int = 0


@dataclass
class IssuerState:
    """Keys, clients and revocation events; thread-safe; survives server restarts."""

    heartbeat: float = 0.2
    jwks_max_age: int = 300
    token_lifetime: int = 300
    event_ttl: float = 600.0
    stream_enabled: bool = True
    issuer: str = ""
    keys: list[Key] = field(default_factory=list)
    signing_kid: str | None = None
    clients: dict[str, RegisteredClient] = field(default_factory=dict)
    events: list[RevocationEvent] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    stream_cursors: list[int] = field(default_factory=list)
    """The cursor each stream connection resumed after."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- keys and tokens ---------------------------------------------------------------

    def add_key(self, alg: str = "EdDSA", *, sign: bool = True) -> Key:
        """Publish a new key in JWKS; it signs new tokens if ``sign``."""
        key = Key.generate(alg)
        with self._lock:
            self.keys.append(key)
            if sign or self.signing_kid is None:
                self.signing_kid = key.kid
        return key

    def remove_key(self, kid: str) -> None:
        with self._lock:
            self.keys = [k for k in self.keys if k.kid != kid]

    def signing_key(self) -> Key:
        return next(k for k in self.keys if k.kid == self.signing_kid)

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [k.to_jwk(private=False) for k in self.keys]}

    def mint(
        self,
        *,
        sub: str = "user-1",
        audience: str | list[str] = "orders",
        roles: Iterable[str] = (),
        scope: str = "",
        sid: str | None = "session-1",
        client_id: str = "web",
        lifetime: float | None = None,
        iat: float | None = None,
        key: Key | None = None,
        **extra: Any,
    ) -> str:
        """An RFC 9068 access token as the real server issues it."""
        now = time.time() if iat is None else iat
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "aud": audience,
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now + (self.token_lifetime if lifetime is None else lifetime)),
            "jti": uuid.uuid4().hex,
            "client_id": client_id,
            "scope": scope,
            "roles": list(roles),
        }
        if sid is not None:
            claims["sid"] = sid
            claims["auth_time"] = int(now)
        claims.update(extra)
        return sign_jwt(claims, key or self.signing_key(), typ="at+jwt")

    # -- revocation events -------------------------------------------------------------

    def revoke(
        self,
        kind: str,
        value: str,
        *,
        not_before: float | None = None,
        ttl: float | None = None,
    ) -> RevocationEvent:
        """Write an event (as block / logout / token revocation do)."""
        now = time.time()
        with self._lock:
            cursor = (self.events[-1].cursor if self.events else 0) + 1
            event = RevocationEvent(
                kind=kind,  # type: ignore[arg-type]
                value=value,
                not_before=now if not_before is None else not_before,
                expires_at=now + (self.event_ttl if ttl is None else ttl),
                cursor=cursor,
            )
            self.events.append(event)
        return event

    def live_after(self, cursor: int, limit: int = 1000) -> list[RevocationEvent]:
        now = time.time()
        with self._lock:
            live = [e for e in self.events if e.cursor > cursor and e.expires_at > now]
        return live[:limit]

    def latest_cursor(self) -> int:
        with self._lock:
            return self.events[-1].cursor if self.events else 0

    # -- clients -----------------------------------------------------------------------

    def register_client(
        self, client_id: str, *, scopes: Iterable[str] = (), audiences: Iterable[str] = ()
    ) -> str:
        secret = secrets.token_urlsafe(24)
        self.clients[client_id] = RegisteredClient(secret, frozenset(scopes), tuple(audiences))
        return secret

    def authenticate(self, authorization: str | None, form: dict[str, str]) -> str | None:
        """The client id proven by HTTP Basic (RFC 6749 §2.3.1) or the form, else ``None``."""
        client_id = secret = None
        if authorization and authorization.lower().startswith("basic "):
            try:
                raw = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            user, sep, password = raw.partition(":")
            if not sep:
                return None
            client_id, secret = unquote_plus(user), unquote_plus(password)
        elif "client_id" in form:
            client_id, secret = form["client_id"], form.get("client_secret")
        client = self.clients.get(client_id or "")
        if client is None or secret is None or not secrets.compare_digest(client.secret, secret):
            return None
        return client_id


def _sse(event: str, data: object, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _unauthorized(state: IssuerState) -> Response:
    state.counters.unauthorized += 1
    return JSONResponse(
        {"error": "invalid_client", "error_description": "client authentication failed"},
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="authmesh"'},
    )


def build_app(state: IssuerState, closing: threading.Event) -> Starlette:
    """The issuer's ASGI app; ``closing`` ends open streams (for a prompt shutdown)."""

    async def discovery(request: Request) -> Response:
        state.counters.discovery += 1
        base = state.issuer
        return JSONResponse(
            {
                "issuer": base,
                "jwks_uri": f"{base}/.well-known/jwks.json",
                "token_endpoint": f"{base}/oauth/token",
                "revocation_endpoint": f"{base}/oauth/revoke",
                "introspection_endpoint": f"{base}/oauth/introspect",
                "grant_types_supported": ["password", "refresh_token", "client_credentials"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "revocation_feed_endpoint": f"{base}/revocations",
                "revocation_feed_stream_endpoint": f"{base}/revocations/stream",
            }
        )

    async def jwks(request: Request) -> Response:
        state.counters.jwks += 1
        return JSONResponse(
            state.jwks(), headers={"Cache-Control": f"public, max-age={state.jwks_max_age}"}
        )

    async def token(request: Request) -> Response:
        body = (await request.body()).decode()
        multi = parse_qs(body)
        form = {k: v[0] for k, v in multi.items()}
        client_id = state.authenticate(request.headers.get("authorization"), form)
        if client_id is None:
            return _unauthorized(state)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        client = state.clients[client_id]
        scopes = set(form.get("scope", "").split()) or set(client.scopes)
        if not scopes <= client.scopes:
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        audiences = multi.get("audience", []) + multi.get("resource", [])
        audiences = audiences or list(client.audiences)
        if not audiences or not set(audiences) <= set(client.audiences):
            return JSONResponse({"error": "invalid_target"}, status_code=400)
        state.counters.tokens += 1
        access = state.mint(
            sub=client_id,
            client_id=client_id,
            sid=None,
            audience=audiences[0] if len(audiences) == 1 else audiences,
            scope=" ".join(sorted(scopes)),
        )
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": state.token_lifetime,
                "scope": " ".join(sorted(scopes)),
            },
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    async def page(request: Request) -> Response:
        if state.authenticate(request.headers.get("authorization"), {}) is None:
            return _unauthorized(state)
        try:
            after = int(request.query_params.get("after", "0"))
            limit = int(request.query_params.get("limit", "500"))
        except ValueError:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if after < 0 or not 1 <= limit <= 1000:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        state.counters.pages += 1
        latest = state.latest_cursor()
        events = state.live_after(after, limit)
        return JSONResponse(
            {
                "events": [e.to_json() for e in events],
                "next_cursor": events[-1].cursor if events else after,
                "has_more": len(events) == limit,
                "latest_cursor": latest,
                "server_time": time.time(),
            },
            headers={"Cache-Control": "no-store"},
        )

    async def stream(request: Request) -> Response:
        if not state.stream_enabled:
            return JSONResponse({"error": "not_found"}, status_code=404)
        if state.authenticate(request.headers.get("authorization"), {}) is None:
            return _unauthorized(state)
        raw = request.headers.get("last-event-id") or request.query_params.get("after", "0")
        try:
            cursor = int(raw)
        except ValueError:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        state.counters.streams += 1
        state.stream_cursors.append(cursor)

        async def events(cursor: int) -> AsyncIterator[bytes]:
            yield b"retry: 1000\n\n"
            last_beat = -1e9
            while not closing.is_set():
                sent = False
                for event in state.live_after(cursor):
                    yield _sse("revocation", event.to_json(), event.cursor)
                    cursor = event.cursor
                    sent = True
                now = time.monotonic()
                if sent or now - last_beat >= state.heartbeat:
                    latest = max(state.latest_cursor(), cursor)
                    yield _sse("heartbeat", {"latest_cursor": latest, "server_time": time.time()})
                    last_beat = now
                await asyncio.sleep(0.01)

        return StreamingResponse(
            events(cursor),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/.well-known/jwks.json", jwks),
            Route("/oauth/token", token, methods=["POST"]),
            Route("/revocations", page),
            Route("/revocations/stream", stream),
        ]
    )


class FakeIssuer:
    """The fake auth server on a loopback port; ``stop()``/``start()`` keep port and state."""

    def __init__(self, state: IssuerState | None = None) -> None:
        self.state = state or IssuerState()
        self._server: UvicornThread | None = None
        self._closing = threading.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return self.state.issuer

    def start(self) -> FakeIssuer:
        self._closing = threading.Event()
        server = UvicornThread(build_app(self.state, self._closing), port=self.port, lifespan="off")
        server.start()
        self.port = server.port
        self.state.issuer = server.url
        if not self.state.keys:
            self.state.add_key()
        self._server = server
        return self

    def stop(self) -> None:
        """Stop the server, ending open feed streams (the issuer 'goes down')."""
        self._closing.set()
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> FakeIssuer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
