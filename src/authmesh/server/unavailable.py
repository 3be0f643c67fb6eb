"""A database outage answers 503 with ``Retry-After`` on every route, never 500 or a hang.

:class:`DatabaseOutageGuard` sits around the routes: an exception that
:func:`~authmesh.store.outages.database_outage` recognises becomes

* a JSON body ``{"error": "temporarily_unavailable", ...}`` for the token
  endpoint, the admin, account and feed APIs. RFC 6749 §4.1.2.1 defines that
  code for the authorization endpoint; §5.2 has none for a token endpoint that
  cannot serve now, and ``temporarily_unavailable`` with HTTP 503 is what clients
  and other servers already understand;
* a plain error page for the browser sign-in pages.

Either way with ``Retry-After`` and one log line naming the error type and a
short message, never SQL, parameters or a traceback; repeats of the same
failure are counted and logged at most every few seconds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authmesh.server.web.render import page
from authmesh.store.db import Database
from authmesh.store.outages import database_outage, describe_outage

__all__ = ["BROWSER_PATHS", "RETRY_AFTER_SECONDS", "DatabaseOutageGuard", "unavailable_response"]

log = logging.getLogger(__name__)

#: Long enough for a database failover or a pool to reconnect, short enough
#: that a client that obeys it is not kept waiting after recovery.
RETRY_AFTER_SECONDS = 5
#: The pages a person sees in a browser: they get HTML, not JSON.
BROWSER_PATHS = frozenset({"/authorize", "/login", "/consent", "/logout"})
_LOG_EVERY = 5.0
_HEADERS = {
    "Retry-After": str(RETRY_AFTER_SECONDS),
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
}


def unavailable_response(path: str) -> Response:
    """503 with ``Retry-After``: a page for a browser path, RFC 6749-shaped JSON otherwise."""
    if path in BROWSER_PATHS:
        response = page(
            "signin/error.html",
            status_code=503,
            heading="Temporarily unavailable",
            message="The sign-in service is temporarily unavailable. "
            f"Try again in {RETRY_AFTER_SECONDS} seconds.",
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return JSONResponse(
        {
            "error": "temporarily_unavailable",
            "error_description": "the server cannot complete the request now; "
            "retry after the Retry-After delay",
        },
        status_code=503,
        headers=_HEADERS,
    )


@dataclass
class _OutageLog:
    """One warning per kind of failure every few seconds, with a count of the rest."""

    every: float = _LOG_EVERY
    _last: dict[str, float] = field(default_factory=dict)
    _muted: dict[str, int] = field(default_factory=dict)

    def report(self, where: str, outcome: str, outage: BaseException) -> None:
        what = describe_outage(outage)
        kind = what.split(":", 1)[0]
        now = time.monotonic()
        if now - self._last.get(kind, -self.every) < self.every:
            self._muted[kind] = self._muted.get(kind, 0) + 1
            return
        self._last[kind] = now
        muted = self._muted.pop(kind, 0)
        more = f" (and {muted} more since the last report)" if muted else ""
        log.warning("database unavailable: %s %s: %s%s", where, outcome, what, more)


class DatabaseOutageGuard:
    """Pure ASGI middleware: a database outage in any route is a 503, logged in one line.

    A response already under way (a feed stream) cannot become a 503: it is
    cut short, and its client reconnects as it would after any network fault.
    """

    def __init__(self, app: ASGIApp, *, db: Database) -> None:
        self.app = app
        self.db = db
        self.log = _OutageLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            outage = database_outage(exc)
            if outage is None:
                raise
            self.db.note_outage()
            path = str(scope.get("path", ""))
            where = f"{scope.get('method', '?')} {path}"
            if started:
                self.log.report(where, "was cut short", outage)
                return
            self.log.report(where, "answered 503", outage)
            await unavailable_response(path)(scope, receive, send)
