"""Read timeouts for uvicorn: slow-header and slow-body clients are answered 408 and dropped.

uvicorn bounds the idle time between requests (``timeout_keep_alive``) but not
the time a client takes to send a request: one that opens a connection and then
trickles its request line, headers or body a byte at a time holds a connection,
a file descriptor and (with a body) an application task for as long as it
likes. A few hundred such clients exhaust the server.

:func:`protocol_class` returns uvicorn's HTTP protocol (httptools when it is
installed, else h11) with :class:`ReadTimeouts` mixed in, to pass as
``uvicorn.Config(http=...)``:

* the **header** deadline starts when a connection opens, or when the first
  byte of a later request on it arrives, and ends when the request's headers
  are complete; headers larger than ``max_header_bytes`` are refused with 431;
* the **body** deadline starts when the headers are complete and ends when the
  whole body has arrived (bodies are small here: forms and JSON);
* past either, the client gets ``408 Request Timeout`` (unless a response has
  already started) and the connection is closed. The application sees the
  request end as a client disconnect.

Both protocol implementations keep the request in flight as ``self.cycle``
(a new object once a request's headers are parsed, with ``more_body``,
``response_started``, ``response_complete`` and ``disconnected``), which is all
this needs of them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

__all__ = ["ReadTimeouts", "default_protocol", "protocol_class"]

log = logging.getLogger(__name__)

Phase = Literal["header", "body"]


def _plain_response(status: int, reason: str, text: str) -> bytes:
    body = text.encode("ascii")
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


_TIMEOUT_408 = _plain_response(408, "Request Timeout", "the request was not received in time")
_HEADERS_431 = _plain_response(
    431, "Request Header Fields Too Large", "the request headers are too large"
)


class ReadTimeouts:
    """Mixin for a uvicorn HTTP protocol class: deadlines on reading each request.

    Class attributes (set by :func:`protocol_class`): ``header_timeout`` and
    ``body_timeout`` in seconds, ``max_header_bytes``.
    """

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 64 * 1024

    # Provided by the uvicorn protocol this is mixed into.
    transport: asyncio.Transport
    cycle: Any
    client: tuple[str, int] | None
    loop: asyncio.AbstractEventLoop

    _deadline: asyncio.TimerHandle | None = None
    _phase: Phase | None = None
    _watched: Any = None
    _header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm("header")

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        if self._deadline is None and (cycle is None or cycle.response_complete):
            self._arm("header")  # the first bytes of the next request on this connection
        super().data_received(data)  # type: ignore[misc]
        self._after_data(len(data))

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    # -- the deadlines ---------------------------------------------------------------------

    def _after_data(self, size: int) -> None:
        protocol: object = self.transport.get_protocol()
        if self.transport.is_closing() or protocol is not self:
            self._disarm()  # closed, or upgraded to a WebSocket: not ours any more
            return
        cycle = self.cycle
        if cycle is not None and cycle is not self._watched:
            # A new request's headers are complete (the protocol made its cycle).
            self._watched = cycle
            self._disarm()
            if cycle.more_body:
                self._arm("body")
        elif self._phase == "body" and cycle is not None and not cycle.more_body:
            self._disarm()
        elif self._phase == "header":
            self._header_bytes += size
            if self._header_bytes > self.max_header_bytes:
                self._refuse(
                    _HEADERS_431, "request headers larger than %s bytes", self.max_header_bytes
                )

    def _arm(self, phase: Phase) -> None:
        self._disarm()
        timeout = self.header_timeout if phase == "header" else self.body_timeout
        self._phase = phase
        self._header_bytes = 0
        self._deadline = self.loop.call_later(timeout, self._expired, phase)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._phase = None

    def _expired(self, phase: Phase) -> None:
        self._deadline = None
        self._phase = None
        if self.transport.is_closing():
            return
        if phase == "header":
            self._refuse(
                _TIMEOUT_408, "request headers not received within %s s", self.header_timeout
            )
        else:
            self._refuse(_TIMEOUT_408, "request body not received within %s s", self.body_timeout)

    def _refuse(self, answer: bytes, why: str, limit: float) -> None:
        """Answer ``answer`` unless a response is under way, then close the connection."""
        cycle = self.cycle
        in_flight = cycle is not None and cycle is self._watched and not cycle.response_complete
        if in_flight:
            # The application is running: it must not write after our answer, and
            # its next read of the body says the client is gone.
            started = cycle.response_started
            cycle.disconnected = True
            cycle.message_event.set()
            if not started:
                self.transport.write(answer)
        else:
            self.transport.write(answer)
        self._disarm()
        log.info("closing a connection from %s: " + why, _peer(self.client), limit)
        self.transport.close()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "an unknown client"


def default_protocol() -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol as its ``http="auto"`` picks it: httptools if installed, else h11."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is optional in uvicorn
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    return HttpToolsProtocol


def protocol_class(
    *,
    header_timeout: float,
    body_timeout: float,
    max_header_bytes: int = 64 * 1024,
    base: type[asyncio.Protocol] | None = None,
) -> type[asyncio.Protocol]:
    """``base`` (default :func:`default_protocol`) with :class:`ReadTimeouts` mixed in."""
    base = base or default_protocol()
    return type(
        f"ReadTimeouts{base.__name__}",
        (ReadTimeouts, base),
        {
            "header_timeout": header_timeout,
            "body_timeout": body_timeout,
            "max_header_bytes": max_header_bytes,
            "__module__": __name__,
        },
    )
