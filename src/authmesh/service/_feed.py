"""The revocation feed's protocol without I/O: :class:`FeedProcessor`.

It builds the page and stream requests (HTTP Basic client authentication,
RFC 6749 §2.3.1; ``Last-Event-ID`` set to the last cursor applied;
``Authmesh-Replica`` naming this process, so the issuer's list of followers
tells the replicas of a service apart), checks the
answers, applies pages and SSE events to a :class:`RevocationState`, and keeps
the connection status and reconnect schedule both subscribers of
:mod:`authmesh.service._subscriber` share.

Reconnecting (:meth:`FeedProcessor.retry_delay`): the usual reason a feed drops
is the auth server restarting, and every moment the subscriber waits after it is
back is a moment a blocked user keeps access. So the first retry comes at once,
jittered over ``feed_backoff_initial`` (default 250 ms) so that many services do
not arrive together, and later ones at most ``feed_backoff_max`` (500 ms) apart:
an unreachable issuer costs a refused TCP connection two to four times a second.
An issuer that *answers* with an error is different: it is up and refusing (a
stream limit, an overload, wrong credentials), so its ``Retry-After`` is obeyed,
or without one the delay doubles up to :data:`REFUSED_BACKOFF_MAX`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from authmesh.revocation import RevocationEvent
from authmesh.service._discovery import ProviderMetadata
from authmesh.service._http import Fetched, basic_authorization, parse_json
from authmesh.service._revocations import RevocationState
from authmesh.service._sse import ServerSentEvent
from authmesh.service.config import ServiceConfig
from authmesh.service.errors import FeedError, FeedUnauthorized
from authmesh.service.stats import ServiceStats

__all__ = ["PAGE_LIMIT", "REFUSED_BACKOFF_MAX", "FeedProcessor", "NoStream"]

log = logging.getLogger(__name__)

#: Largest page the contract allows.
PAGE_LIMIT = 1000
_NO_STREAM_STATUSES = frozenset({404, 405, 501})
#: Longest wait after an error answer without ``Retry-After`` (the issuer is up, refusing).
REFUSED_BACKOFF_MAX = 10.0
#: A ``Retry-After`` longer than this is read as this (a typo must not stop the feed for a day).
_MAX_RETRY_AFTER = 60.0
#: While the feed stays down, the same failure is logged at WARNING at most this often.
_LOG_EVERY = 30.0


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """``Retry-After`` in delta-seconds (RFC 9110 §10.2.3), or ``None``; a date is ignored."""
    value = (headers or {}).get("retry-after", "").strip()
    if not value.isdigit() or not value.isascii():
        return None
    return min(float(value), _MAX_RETRY_AFTER)


class NoStream(Exception):
    """The issuer has no stream endpoint: poll pages instead."""


class FeedProcessor:
    """Applies pages and SSE events to a :class:`RevocationState`; no I/O.

    Also holds the connection status both subscribers report.
    """

    def __init__(
        self,
        config: ServiceConfig,
        state: RevocationState,
        *,
        stats: ServiceStats | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if config.client_id is None or config.client_secret is None:
            raise FeedError("the revocation feed needs client_id and client_secret")
        self.config = config
        self.state = state
        self.stats = stats or ServiceStats()
        self._rng = rng
        self._authorization = basic_authorization(config.client_id, config.client_secret)
        #: This process, as the issuer's follower registry lists it.
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        staleness = config.max_feed_staleness.total_seconds()
        #: A stream silent this long is dead even if TCP says otherwise.
        self.read_timeout = max(2 * staleness, 5.0)
        #: Polling period when the issuer has no stream.
        self.poll_interval = min(1.0, staleness / 3)
        self.connected = False
        self.mode: str | None = None
        self.last_error: str | None = None
        self.synced = threading.Event()
        self._logged_error: str | None = None
        self._logged_at = -1e18
        self._silenced = 0

    # -- requests --------------------------------------------------------------------

    def page_request(self) -> dict[str, Any]:
        """Keyword arguments of the next page request."""
        return {
            "params": {"after": self.state.cursor, "limit": PAGE_LIMIT},
            "headers": {
                "Accept": "application/json",
                "Authorization": self._authorization,
                "Authmesh-Replica": self.replica,
            },
        }

    def stream_request(self, timeout: float) -> dict[str, Any]:
        """Keyword arguments of the stream request, resuming after the last cursor."""
        return {
            "headers": {
                "Accept": "text/event-stream",
                "Cache-Control": "no-cache",
                "Authorization": self._authorization,
                "Last-Event-ID": str(self.state.cursor),
                "Authmesh-Replica": self.replica,
            },
            "timeout": httpx.Timeout(timeout, read=self.read_timeout),
        }

    # -- responses -------------------------------------------------------------------

    @staticmethod
    def check_status(status: int, what: str, headers: Mapping[str, str] | None = None) -> None:
        """Raise for a status other than 200, with the answer's ``Retry-After``."""
        if status == 401:
            raise FeedUnauthorized(
                f"{what}: the issuer refused this service's client credentials", status=status
            )
        if status != 200:
            raise FeedError(
                f"{what}: HTTP {status}", status=status, retry_after=_retry_after(headers)
            )

    def check_stream(self, response: httpx.Response) -> None:
        """Accept a 200 ``text/event-stream`` response; mark the feed connected."""
        if response.status_code in _NO_STREAM_STATUSES:
            raise NoStream()
        self.check_status(response.status_code, "revocation stream", response.headers)
        ctype = response.headers.get("content-type", "")
        if not ctype.lower().startswith("text/event-stream"):
            raise FeedError(f"revocation stream: unexpected content type {ctype[:100]!r}")
        self.connected = True
        self.mode = "stream"
        self.stats.feed_connects += 1

    def apply_page(self, fetched: Fetched) -> bool:
        """Apply one page; returns ``has_more``.

        Raises:
            FeedError: bad status or a malformed page (nothing past it is trusted).
        """
        self.check_status(fetched.status_code, "revocation feed", fetched.headers)
        doc = parse_json(fetched, what="revocation feed", error=FeedError)
        events = doc.get("events") if isinstance(doc, dict) else None
        if not isinstance(events, list):
            raise FeedError("revocation feed: the page has no events list")
        for item in events:
            self._apply(item)
        latest = doc.get("latest_cursor")
        self.state.mark_heard(latest if isinstance(latest, int) else None)
        self.state.prune()
        self.stats.feed_pages += 1
        return bool(doc.get("has_more")) and bool(events)

    def _apply(self, item: object) -> None:
        try:
            if not isinstance(item, dict):
                raise ValueError("an event is not a JSON object")
            event = RevocationEvent.from_json(item)
        except ValueError as exc:
            # Skipping it would lose a revocation: stop here and retry from the cursor.
            raise FeedError(f"revocation feed: malformed event: {exc}") from None
        self.state.apply(event)
        self.stats.feed_events += 1

    def handle(self, sse: ServerSentEvent) -> None:
        """Apply one SSE event: ``revocation`` or ``heartbeat``; any event proves liveness."""
        if sse.event == "revocation":
            try:
                data = json.loads(sse.data)
            except ValueError:
                raise FeedError("revocation stream: event data is not JSON") from None
            self._apply(data)
            self.state.mark_heard()
        elif sse.event == "heartbeat":
            latest = None
            with contextlib.suppress(ValueError):
                doc = json.loads(sse.data)
                if isinstance(doc, dict) and isinstance(doc.get("latest_cursor"), int):
                    latest = doc["latest_cursor"]
            self.state.mark_heard(latest)
            self.state.prune()
            self.stats.feed_heartbeats += 1
            self.synced.set()
        else:
            self.state.mark_heard()

    # -- reconnection ------------------------------------------------------------------

    def endpoints(self, meta: ProviderMetadata) -> tuple[str | None, str | None]:
        """The page and stream URLs from discovery."""
        page, stream = meta.revocation_feed_endpoint, meta.revocation_feed_stream_endpoint
        if page is None and stream is None:
            raise FeedError("discovery names no revocation_feed_endpoint")
        return page, stream

    def backoff(self, attempt: int) -> float:
        """Delay before reconnect ``attempt`` (0-based) to an unreachable issuer.

        The first within ``feed_backoff_initial`` (full jitter: anywhere from 0),
        then doubling up to ``feed_backoff_max`` with jitter over its upper half.
        """
        initial = self.config.feed_backoff_initial.total_seconds()
        if attempt <= 0:
            return initial * self._rng()
        base = min(
            initial * float(2 ** min(attempt, 20)), self.config.feed_backoff_max.total_seconds()
        )
        return base * (0.5 + self._rng() / 2)

    def retry_delay(self, exc: BaseException, attempt: int) -> float:
        """Delay before reconnect ``attempt`` after ``exc`` ended the previous one.

        Unreachable, or the stream ended (a restart): :meth:`backoff`. The issuer
        answered with an error: its ``Retry-After`` (plus a little jitter), else
        doubling up to :data:`REFUSED_BACKOFF_MAX`.
        """
        if not isinstance(exc, FeedError) or exc.status is None:
            return self.backoff(attempt)
        initial = self.config.feed_backoff_initial.total_seconds()
        if exc.retry_after is not None:
            return exc.retry_after + initial * self._rng()
        base = min(initial * float(2 ** min(attempt + 1, 20)), REFUSED_BACKOFF_MAX)
        return base * (0.5 + self._rng() / 2)

    def failed(self, exc: BaseException) -> None:
        """Record a failed or ended connection.

        Logged at WARNING (ERROR for refused credentials) when the feed drops or
        the error changes, then at most every 30 s while it stays down: retrying
        several times a second must not flood the log.
        """
        was_connected = self.connected
        self.connected = False
        self.stats.feed_failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        kind = f"{type(exc).__name__}:{getattr(exc, 'status', None)}"
        now = time.monotonic()
        if was_connected or kind != self._logged_error or now - self._logged_at >= _LOG_EVERY:
            level = logging.ERROR if isinstance(exc, FeedUnauthorized) else logging.WARNING
            again = (
                f" ({self._silenced} more failures since the last report)" if self._silenced else ""
            )
            log.log(level, "revocation feed disconnected: %s%s", self.last_error, again)
            self._logged_error, self._logged_at, self._silenced = kind, now, 0
        else:
            self._silenced += 1
            log.debug("revocation feed still disconnected: %s", self.last_error)

    def health(self) -> dict[str, Any]:
        """Connection status and lag."""
        state = self.state
        stale = state.seconds_since_heard() > self.config.max_feed_staleness.total_seconds()
        return {
            "enabled": True,
            "connected": self.connected,
            "mode": self.mode,
            "stale": stale,
            "fail_open": self.config.fail_open,
            "heard_once": state.connected_once,
            "reconnects": self.stats.feed_failures,
            "last_error": self.last_error,
            **state.lag(),
        }
