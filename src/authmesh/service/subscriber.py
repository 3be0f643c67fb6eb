"""Following the revocation feed (docs/architecture.md "Revocation feed").

Each connection first catches up with ``GET /revocations?after=CURSOR`` page by
page, then follows ``GET /revocations/stream`` (SSE) with ``Last-Event-ID``
set to the last cursor applied, so nothing written while disconnected is
lost. On any failure it reconnects with exponential backoff and jitter. If the
issuer has no stream endpoint (404), it polls the page endpoint instead.

Both endpoints authenticate the service with HTTP Basic (RFC 6749 §2.3.1).

:class:`RevocationSubscriber` runs as an asyncio task (ASGI services);
:class:`ThreadedRevocationSubscriber` runs in a daemon thread (WSGI services).
Both share :class:`FeedProcessor`, which does everything but I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from authmesh.revocation import RevocationEvent
from authmesh.service._http import (
    Fetched,
    HttpClients,
    afetch,
    basic_authorization,
    fetch,
    parse_json,
)
from authmesh.service.config import ServiceConfig
from authmesh.service.discovery import Discovery, ProviderMetadata
from authmesh.service.errors import FeedError, FeedUnauthorized, IssuerError
from authmesh.service.revocations import RevocationState
from authmesh.service.sse import ServerSentEvent, SSEParser
from authmesh.service.stats import ServiceStats

__all__ = ["FeedProcessor", "RevocationSubscriber", "ThreadedRevocationSubscriber"]

log = logging.getLogger("authmesh.service.feed")

#: Largest page the contract allows.
PAGE_LIMIT = 1000
_NO_STREAM_STATUSES = frozenset({404, 405, 501})


class _NoStream(Exception):
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
        staleness = config.max_feed_staleness.total_seconds()
        #: A stream silent this long is dead even if TCP says otherwise.
        self.read_timeout = max(2 * staleness, 5.0)
        #: Polling period when the issuer has no stream.
        self.poll_interval = min(1.0, staleness / 3)
        self.connected = False
        self.mode: str | None = None
        self.last_error: str | None = None
        self.synced = threading.Event()

    # -- requests --------------------------------------------------------------------

    def page_request(self) -> dict[str, Any]:
        """Keyword arguments of the next page request."""
        return {
            "params": {"after": self.state.cursor, "limit": PAGE_LIMIT},
            "headers": {"Accept": "application/json", "Authorization": self._authorization},
        }

    def stream_request(self, timeout: float) -> dict[str, Any]:
        """Keyword arguments of the stream request, resuming after the last cursor."""
        return {
            "headers": {
                "Accept": "text/event-stream",
                "Cache-Control": "no-cache",
                "Authorization": self._authorization,
                "Last-Event-ID": str(self.state.cursor),
            },
            "timeout": httpx.Timeout(timeout, read=self.read_timeout),
        }

    # -- responses -------------------------------------------------------------------

    @staticmethod
    def check_status(status: int, what: str) -> None:
        """Raise for a status other than 200."""
        if status == 401:
            raise FeedUnauthorized(f"{what}: the issuer refused this service's client credentials")
        if status != 200:
            raise FeedError(f"{what}: HTTP {status}")

    def check_stream(self, response: httpx.Response) -> None:
        """Accept a 200 ``text/event-stream`` response; mark the feed connected."""
        if response.status_code in _NO_STREAM_STATUSES:
            raise _NoStream()
        self.check_status(response.status_code, "revocation stream")
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
        self.check_status(fetched.status_code, "revocation feed")
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
        """Delay before reconnect ``attempt`` (0-based): doubling, capped, jittered."""
        base = self.config.feed_backoff_initial.total_seconds() * float(2 ** min(attempt, 20))
        delay = min(base, self.config.feed_backoff_max.total_seconds())
        return delay * (0.5 + self._rng() / 2)

    def failed(self, exc: BaseException) -> None:
        """Record a failed or ended connection."""
        self.connected = False
        self.stats.feed_failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        level = logging.ERROR if isinstance(exc, FeedUnauthorized) else logging.WARNING
        log.log(level, "revocation feed disconnected: %s", self.last_error)

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


class RevocationSubscriber:
    """Follows the feed in an asyncio task; start it in the ASGI lifespan."""

    def __init__(
        self,
        processor: FeedProcessor,
        discovery: Discovery,
        http: HttpClients,
    ) -> None:
        self.processor = processor
        self._discovery = discovery
        self._http = http
        self._task: asyncio.Task[None] | None = None
        self._timeout = processor.config.http_timeout.total_seconds()

    @property
    def running(self) -> bool:
        """Whether the task is alive."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start following (idempotent); the staleness clock starts now."""
        if self.running:
            return
        self.processor.state.mark_started()
        self._task = asyncio.create_task(self._run(), name="authmesh-revocation-feed")

    async def stop(self) -> None:
        """Stop following and wait for the task to end."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.processor.connected = False

    async def wait_synced(self, timeout: float) -> bool:
        """Wait until the first catch-up completed; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while not self.processor.synced.is_set():
            if time.monotonic() >= deadline or not self.running:
                return False
            await asyncio.sleep(0.01)
        return True

    async def _run(self) -> None:
        attempt = 0
        proc = self.processor
        while True:
            heard = proc.state.last_heard
            try:
                await self._session()
                proc.failed(FeedError("the stream ended"))
            except asyncio.CancelledError:
                raise
            except (IssuerError, httpx.HTTPError, ValueError) as exc:
                proc.failed(exc)
            except Exception as exc:  # never let the task die: that would fail closed forever
                log.exception("revocation feed: unexpected error")
                proc.failed(exc)
            if proc.state.last_heard != heard:
                attempt = 0
            await asyncio.sleep(proc.backoff(attempt))
            attempt += 1

    async def _session(self) -> None:
        proc = self.processor
        page_url, stream_url = proc.endpoints(await self._discovery.aget())
        client = self._http.async_client()
        if page_url is not None:
            await self._catch_up(client, page_url)
        if stream_url is not None:
            try:
                await self._stream(client, stream_url)
                return
            except _NoStream:
                if page_url is None:
                    raise FeedError("revocation stream: not found, and no page endpoint") from None
                log.warning("revocation feed: no stream endpoint; polling %s", page_url)
        assert page_url is not None
        proc.mode = "poll"
        proc.connected = True
        while True:
            await asyncio.sleep(proc.poll_interval)
            await self._catch_up(client, page_url)

    async def _catch_up(self, client: httpx.AsyncClient, url: str) -> None:
        proc = self.processor
        while True:
            fetched = await afetch(
                client, url, what="revocation feed", error=FeedError, **proc.page_request()
            )
            if not proc.apply_page(fetched):
                break
        proc.synced.set()

    async def _stream(self, client: httpx.AsyncClient, url: str) -> None:
        proc = self.processor
        async with client.stream("GET", url, **proc.stream_request(self._timeout)) as response:
            proc.check_stream(response)
            parser = SSEParser()
            async for text in response.aiter_text():
                for sse in parser.feed(text):
                    proc.handle(sse)


def _interrupt(response: httpx.Response) -> None:
    """Wake a thread blocked reading ``response`` from another thread.

    Closing a socket does not wake a ``recv`` blocked on it in another thread
    (the reader would sleep until the next heartbeat); shutting it down does,
    and the reader then closes the response itself.
    """
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        return
    with contextlib.suppress(Exception):
        response.close()


class ThreadedRevocationSubscriber:
    """Follows the feed in a daemon thread (for WSGI services such as Flask)."""

    def __init__(
        self,
        processor: FeedProcessor,
        discovery: Discovery,
        http: HttpClients,
    ) -> None:
        self.processor = processor
        self._discovery = discovery
        self._http = http
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._response: httpx.Response | None = None
        self._timeout = processor.config.http_timeout.total_seconds()

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start following (idempotent); the staleness clock starts now."""
        if self.running:
            return
        self._stopping.clear()
        self.processor.state.mark_started()
        self._thread = threading.Thread(
            target=self._run, name="authmesh-revocation-feed", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following; closes the open stream so the thread ends promptly."""
        self._stopping.set()
        response = self._response
        if response is not None:
            _interrupt(response)
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        self.processor.connected = False

    def wait_synced(self, timeout: float) -> bool:
        """Wait until the first catch-up completed; ``False`` on timeout."""
        return self.processor.synced.wait(timeout)

    def _run(self) -> None:
        attempt = 0
        proc = self.processor
        while not self._stopping.is_set():
            heard = proc.state.last_heard
            try:
                self._session()
                proc.failed(FeedError("the stream ended"))
            except (IssuerError, httpx.HTTPError, ValueError) as exc:
                if self._stopping.is_set():
                    break
                proc.failed(exc)
            except Exception as exc:  # never let the thread die: that would fail closed forever
                if self._stopping.is_set():
                    break
                log.exception("revocation feed: unexpected error")
                proc.failed(exc)
            if proc.state.last_heard != heard:
                attempt = 0
            self._stopping.wait(proc.backoff(attempt))
            attempt += 1

    def _session(self) -> None:
        proc = self.processor
        page_url, stream_url = proc.endpoints(self._discovery.get())
        client = self._http.sync_client()
        if page_url is not None:
            self._catch_up(client, page_url)
        if stream_url is not None:
            try:
                self._stream(client, stream_url)
                return
            except _NoStream:
                if page_url is None:
                    raise FeedError("revocation stream: not found, and no page endpoint") from None
                log.warning("revocation feed: no stream endpoint; polling %s", page_url)
        assert page_url is not None
        proc.mode = "poll"
        proc.connected = True
        while not self._stopping.wait(proc.poll_interval):
            self._catch_up(client, page_url)

    def _catch_up(self, client: httpx.Client, url: str) -> None:
        proc = self.processor
        while not self._stopping.is_set():
            fetched = fetch(
                client, url, what="revocation feed", error=FeedError, **proc.page_request()
            )
            if not proc.apply_page(fetched):
                break
        proc.synced.set()

    def _stream(self, client: httpx.Client, url: str) -> None:
        proc = self.processor
        with client.stream("GET", url, **proc.stream_request(self._timeout)) as response:
            self._response = response
            try:
                proc.check_stream(response)
                parser = SSEParser()
                for text in response.iter_text():
                    if self._stopping.is_set():
                        return
                    for sse in parser.feed(text):
                        proc.handle(sse)
            finally:
                self._response = None
