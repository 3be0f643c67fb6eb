"""Request bodies: a size limit (413), and clients that hang up mid-request handled quietly.

:class:`BodyLimit` refuses a body larger than ``max_bytes`` with ``413`` and
``{"error": "invalid_request", …}``: at once when ``Content-Length`` says so
(nothing is read), or as soon as a chunked body grows past it. Routes with a
smaller limit of their own (the OAuth forms: 16 KiB, answered 400 as RFC 6749
§5.2 asks of the token endpoint) keep it; this is the bound for everything.

A client that disconnects while its body is being read makes Starlette raise
``ClientDisconnect`` in the route. Nobody is left to answer, and it is not a
server fault: :func:`quiet_client_disconnects` turns it into a debug line
instead of an error with a traceback (uvicorn's "Exception in ASGI application").
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "BodyTooLarge", "quiet_client_disconnects"]

log = logging.getLogger(__name__)


class BodyTooLarge(HTTPException):
    """The request body is over the limit: 413, connection closed (its rest is unread).

    An ``HTTPException`` so that it passes FastAPI's body parsing untouched (which
    turns other errors into a 400) and reaches the app's HTTP error handler.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"the request body is larger than {max_bytes} bytes",
            headers={"Connection": "close", "Cache-Control": "no-store"},
        )


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses these before we run
    return None


class BodyLimit:
    """Pure ASGI middleware: HTTP request bodies of at most ``max_bytes`` (0 = no limit)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_bytes
        if scope["type"] != "http" or not limit:
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


def _too_large(limit: int) -> Response:
    error = BodyTooLarge(limit)
    body = {"error": "invalid_request", "error_description": error.detail}
    return Response(
        json.dumps(body),
        status_code=413,
        media_type="application/json",
        headers=error.headers,
    )


def quiet_client_disconnects(app: FastAPI) -> None:
    """Answer nothing, and log no error, when the client left mid-request."""

    async def gone(request: Request, _exc: Exception) -> Response:
        peer = request.client
        log.debug(
            "client %s disconnected during %s %s",
            f"{peer.host}:{peer.port}" if peer else "?",
            request.method,
            request.url.path,
        )
        # Never sent: the server drops writes to a closed connection.
        return Response(status_code=400)

    app.add_exception_handler(ClientDisconnect, gone)
