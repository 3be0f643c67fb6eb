"""The test issuer's HTTP face: the wire contract of the real auth server (docs/architecture.md).

Discovery, JWKS (with ``Cache-Control: max-age``), the token endpoint for
client_credentials, and the revocation feed: ``GET /revocations?after=`` and
``GET /revocations/stream`` (SSE, resuming after ``Last-Event-ID``, with
heartbeats), both behind HTTP Basic client authentication.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from authmesh.rfc6750 import basic_challenge
from authmesh.testing.issuer_state import IssuerState

__all__ = ["build_app"]


def _sse(event: str, data: object, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _unauthorized(state: IssuerState) -> Response:
    state.counters.unauthorized += 1
    return JSONResponse(
        {"error": "invalid_client", "error_description": "client authentication failed"},
        status_code=401,
        headers={"WWW-Authenticate": basic_challenge("authmesh")},
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
