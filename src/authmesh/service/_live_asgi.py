"""ASGI: end a WebSocket or a streamed response when the token it serves is revoked.

A WebSocket is watched for its whole life: on revocation its task is cancelled
and it is closed with code 1008 (policy violation, RFC 6455 §7.4.1), or refused
(403) if the handshake had not completed.

An HTTP request is watched only once it waits for the client after its body
has been read: that is what a streamed response does (Starlette's
``StreamingResponse`` listens for the disconnect), and what an ordinary request
never does, so ordinary requests pay for one small object and nothing else. On
revocation that wait answers ``http.disconnect``, the app stops streaming the
way it does when a client leaves, and the response body is ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from authmesh.service._live import LiveConnection, LiveConnections

__all__ = ["REVOKED_CLOSE_CODE", "HttpWatch", "serve_websocket_until_revoked"]

# The ASGI types, spelled out so that this module needs no framework.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RevokedNow = Callable[[Any], bool]

#: WebSocket close code for a revoked token (policy violation).
REVOKED_CLOSE_CODE = 1008
_REASON = "token revoked"
_DISCONNECT: Message = {"type": "http.disconnect"}


class HttpWatch:
    """One HTTP request's ``receive``, watched once the request waits on its client."""

    __slots__ = (
        "_body_done",
        "_claims",
        "_live",
        "_receive",
        "_revoked",
        "_revoked_now",
        "connection",
    )

    def __init__(
        self, receive: Receive, claims: Any, live: LiveConnections, revoked_now: RevokedNow
    ) -> None:
        self._receive = receive
        self._claims = claims
        self._live = live
        self._revoked_now = revoked_now
        self._body_done = False
        self._revoked: asyncio.Future[None] | None = None
        self.connection: LiveConnection | None = None

    async def receive(self) -> Message:
        """The app's ``receive``: the client's messages, or a disconnect on revocation."""
        if not self._body_done:
            message = await self._receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                self._body_done = True
            return message
        revoked = self._revoked
        if revoked is None:
            revoked = self._revoked = asyncio.get_running_loop().create_future()
            self.connection = self._live.register(self._claims, lambda: _settle(revoked))
            if self._revoked_now(self._claims):
                self.connection.revoke()
        if revoked.done():
            return _DISCONNECT
        waiting = asyncio.ensure_future(self._receive())
        try:
            await asyncio.wait((waiting, revoked), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not waiting.done():
                waiting.cancel()
        return waiting.result() if waiting.done() and not waiting.cancelled() else _DISCONNECT

    async def finish(self, send: Send) -> None:
        """After the app: stop watching; end the body the revocation cut short."""
        connection = self.connection
        if connection is None:
            return
        self._live.unregister(connection)
        if connection.revoked:
            # If the app ended the body itself, the server refuses this; nothing is lost.
            with contextlib.suppress(OSError, RuntimeError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def serve_websocket_until_revoked(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    claims: Any,
    live: LiveConnections,
    revoked_now: RevokedNow,
) -> None:
    """Run ``app`` for one WebSocket; close it with 1008 if its token is revoked meanwhile."""
    task = asyncio.current_task()
    assert task is not None
    closed = False

    async def watched_send(message: Message) -> None:
        nonlocal closed
        if message["type"] == "websocket.close":
            closed = True
        await send(message)

    connection = live.register(claims, task.cancel)
    if revoked_now(claims):
        connection.revoke()
    try:
        await app(scope, receive, watched_send)
    except asyncio.CancelledError:
        if not connection.revoked:
            raise
        task.uncancel()
        if not closed:
            with contextlib.suppress(OSError, RuntimeError):
                # Before the handshake this refuses it (403); after, it closes with 1008.
                await send(
                    {"type": "websocket.close", "code": REVOKED_CLOSE_CODE, "reason": _REASON}
                )
    finally:
        live.unregister(connection)
