"""An incremental parser for ``text/event-stream`` (WHATWG HTML §9.2 Server-sent events).

Handles what the spec requires and naive line splitting gets wrong: CRLF, LF
and lone CR line ends (also split across chunks), comment lines, ``field``
without a colon, one optional space after the colon, multi-line ``data``, an
``id`` that persists across events (and is ignored if it contains NUL), a
leading BOM, and an event without data that is not dispatched.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_LINE", "SSEParser", "ServerSentEvent"]

#: A line longer than this is refused (a feed event is a few hundred bytes).
MAX_LINE = 1 << 20


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event."""

    event: str
    data: str
    id: str | None
    retry: int | None = None


class SSEParser:
    """Feed decoded text chunks; get back the events they complete."""

    __slots__ = ("_buffer", "_data", "_event", "_last_id", "_retry", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._buffer = ""
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None
        self._skip_lf = False
        self._started = False

    @property
    def last_event_id(self) -> str | None:
        """The last event ID seen (the ``Last-Event-ID`` to resume with)."""
        return self._last_id

    @property
    def retry(self) -> int | None:
        """The last ``retry`` the server asked for, in milliseconds."""
        return self._retry

    def feed(self, chunk: str) -> list[ServerSentEvent]:
        """Parse a chunk; return the events completed by it."""
        if not self._started and chunk:
            self._started = True
            if chunk.startswith("\ufeff"):
                chunk = chunk[1:]
        if self._skip_lf and chunk:
            if chunk.startswith("\n"):
                # The CR ending the previous chunk and this LF are one line end.
                chunk = chunk[1:]
            self._skip_lf = False
        text = self._buffer + chunk
        events: list[ServerSentEvent] = []
        start = 0
        length = len(text)
        while start < length:
            cr = text.find("\r", start)
            lf = text.find("\n", start)
            if cr == -1 and lf == -1:
                break
            if cr == -1 or (lf != -1 and lf < cr):
                end, nxt = lf, lf + 1
            elif cr + 1 < length:
                end = cr
                nxt = cr + 2 if text[cr + 1] == "\n" else cr + 1
            else:
                # CR at the very end: a line end, but an LF may follow in the next chunk.
                end, nxt = cr, cr + 1
                self._skip_lf = True
            event = self._line(text[start:end])
            if event is not None:
                events.append(event)
            start = nxt
        self._buffer = text[start:]
        if len(self._buffer) > MAX_LINE:
            raise ValueError(f"an event-stream line is longer than {MAX_LINE} characters")
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry":
            if value.isdigit() and value.isascii():
                self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(
            event=self._event or "message",
            data="\n".join(self._data),
            id=self._last_id,
            retry=self._retry,
        )
        self._data = []
        self._event = ""
        return event
