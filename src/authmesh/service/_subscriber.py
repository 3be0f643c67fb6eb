"""Following the revocation feed (docs/architecture.md "Revocation feed").

Each connection first catches up with ``GET /revocations?after=CURSOR`` page by
page, then follows ``GET /revocations/stream`` (SSE) with ``Last-Event-ID``
set to the last cursor applied, so nothing written while disconnected is
lost. On any failure it reconnects on the schedule of
:meth:`~authmesh.service._feed.FeedProcessor.retry_delay`: at once (jittered)
after a restart, short capped delays while the issuer is unreachable, and the
issuer's ``Retry-After`` when it refuses. If the issuer has no stream endpoint
(404), it polls the page endpoint instead.

Both endpoints authenticate the service with HTTP Basic (RFC 6749 §2.3.1).

:class:`RevocationSubscriber` runs as an asyncio task (ASGI services);
:class:`ThreadedRevocationSubscriber` runs in a daemon thread (WSGI services).
Both share a :class:`~authmesh.service._feed.FeedProcessor`, which does
everything but I/O. The Shared Signals followers are :class:`FeedTask` subclasses too;
:class:`ThreadedFeedTask` runs one on an event loop of its own in a daemon
thread for WSGI services.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable

import httpx

from authmesh.service._discovery import Discovery
from authmesh.service._feed import FeedProcessor, NoStream
from authmesh.service._http import HttpClients, afetch, fetch
from authmesh.service._sse import SSEParser
from authmesh.service.errors import FeedError, IssuerError

__all__ = [
    "FeedTask",
    "RevocationSubscriber",
    "ThreadedFeedTask",
    "ThreadedRevocationSubscriber",
]

log = logging.getLogger(__name__)


class FeedTask:
    """The task of an asyncio follower of the issuer (the native feed, or Shared Signals).

    Subclasses set :attr:`processor` and write :meth:`_run`, the loop of connections.
    """

    #: The asyncio task's name.
    task_name = "authmesh-revocation-feed"
    processor: FeedProcessor
    _task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the task is alive."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start following (idempotent); the staleness clock starts now."""
        if self.running:
            return
        self.processor.state.mark_started()
        self._task = asyncio.create_task(self._run(), name=self.task_name)

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
        raise NotImplementedError


class RevocationSubscriber(FeedTask):
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

    async def _run(self) -> None:
        attempt = 0
        proc = self.processor
        while True:
            heard = proc.state.last_heard
            error: BaseException
            try:
                await self._session()
                error = FeedError("the stream ended")
            except asyncio.CancelledError:
                raise
            except (IssuerError, httpx.HTTPError, ValueError) as exc:
                error = exc
            except Exception as exc:  # never let the task die: that would fail closed forever
                log.exception("revocation feed: unexpected error")
                error = exc
            proc.failed(error)
            if proc.state.last_heard != heard:
                attempt = 0
            await asyncio.sleep(proc.retry_delay(error, attempt))
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
            except NoStream:
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
            error: BaseException
            try:
                self._session()
                error = FeedError("the stream ended")
            except (IssuerError, httpx.HTTPError, ValueError) as exc:
                if self._stopping.is_set():
                    break
                error = exc
            except Exception as exc:  # never let the thread die: that would fail closed forever
                if self._stopping.is_set():
                    break
                log.exception("revocation feed: unexpected error")
                error = exc
            proc.failed(error)
            if proc.state.last_heard != heard:
                attempt = 0
            self._stopping.wait(proc.retry_delay(error, attempt))
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
            except NoStream:
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


class ThreadedFeedTask:
    """A :class:`FeedTask` run in a daemon thread on an event loop of its own (WSGI services).

    Args:
        processor: the feed processor the task fills (its ``synced`` is waited on).
        http: the HTTP clients; the thread's async client is closed with its loop.
        make_task: builds the task, called in the thread.
        name: the thread's name.
    """

    def __init__(
        self,
        processor: FeedProcessor,
        http: HttpClients,
        make_task: Callable[[], FeedTask],
        *,
        name: str,
    ) -> None:
        self.processor = processor
        self._http = http
        self._make_task = make_task
        self._name = name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start following in a thread (idempotent)."""
        if self.running:
            return
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            task = self._make_task()
            loop.run_until_complete(task.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(task.stop())
            # This loop's HTTP client goes with it (the service closes the rest).
            loop.run_until_complete(self._http.aclose())
            loop.close()

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        ready.wait(5)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and the thread."""
        loop, thread = self._loop, self._thread
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout)
        self._thread = self._loop = None
        self.processor.connected = False

    def wait_synced(self, timeout: float) -> bool:
        """Wait until the first catch-up was applied."""
        return self.processor.synced.wait(timeout)
