"""HTTP plumbing shared by discovery, the JWKS cache, the feed and the token client.

One :class:`httpx.Client` and one :class:`httpx.AsyncClient` per service, built
from the config (CA bundle, timeout, no redirects: a redirect from the auth
server is a misconfiguration, not something to follow with credentials).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
from typing import Any, TypeVar
from urllib.parse import quote_plus

import httpx

from authmesh import __version__
from authmesh.service.config import ServiceConfig
from authmesh.service.errors import IssuerError

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "Fetched",
    "HttpClients",
    "afetch",
    "basic_authorization",
    "fetch",
    "parse_json",
    "propagate_trace",
]

#: Discovery, JWKS and feed pages are small; refuse anything bigger than this.
MAX_DOCUMENT_BYTES = 1 << 20
USER_AGENT = f"authmesh-service/{__version__}"

_Client = TypeVar("_Client", httpx.Client, httpx.AsyncClient)


class HttpClients:
    """Lazily built HTTP clients with the config's TLS and timeout settings.

    Transports can be injected (tests use :class:`httpx.MockTransport`).
    """

    def __init__(
        self,
        config: ServiceConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._transport = transport
        self._async_transport = async_transport
        self._lock = threading.Lock()
        self._sync: httpx.Client | None = None
        self._async: httpx.AsyncClient | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None

    def _options(self) -> dict[str, Any]:
        verify: ssl.SSLContext | bool = True
        if self._config.ca_bundle:
            verify = ssl.create_default_context(cafile=self._config.ca_bundle)
        return {
            "verify": verify,
            "timeout": httpx.Timeout(self._config.http_timeout.total_seconds()),
            "follow_redirects": False,
            "headers": {"User-Agent": USER_AGENT},
            "trust_env": False,
        }

    def _traced(self, client: _Client) -> _Client:
        """``client``, its requests traced when the config asks for OpenTelemetry."""
        if self._config.otel:
            from authmesh.tracing import instrument_httpx_client

            instrument_httpx_client(client)
        return client

    def sync_client(self) -> httpx.Client:
        """The shared synchronous client (thread-safe)."""
        with self._lock:
            if self._sync is None:
                self._sync = self._traced(
                    httpx.Client(transport=self._transport, **self._options())
                )
            return self._sync

    def async_client(self) -> httpx.AsyncClient:
        """The asynchronous client of the running event loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._async is None or self._async_loop is not loop:
                # A client's connections belong to one loop; a new loop needs a new client.
                self._async = self._traced(
                    httpx.AsyncClient(transport=self._async_transport, **self._options())
                )
                self._async_loop = loop
            return self._async

    def close(self) -> None:
        """Close the synchronous client."""
        with self._lock:
            client, self._sync = self._sync, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close both clients (the async one only from its own loop)."""
        self.close()
        with self._lock:
            client, loop = self._async, self._async_loop
            self._async = self._async_loop = None
        if client is not None and loop is asyncio.get_running_loop():
            await client.aclose()


class Fetched:
    """A response whose body was read up to :data:`MAX_DOCUMENT_BYTES`."""

    __slots__ = ("body", "headers", "status_code")

    def __init__(self, status_code: int, headers: httpx.Headers, body: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.body = body


def fetch(
    client: httpx.Client,
    url: str,
    *,
    what: str,
    error: type[IssuerError] = IssuerError,
    **kwargs: Any,
) -> Fetched:
    """GET ``url`` and read a bounded body.

    Raises:
        IssuerError: (the ``error`` subclass) network failure or an oversized body.
    """
    try:
        with client.stream("GET", url, **kwargs) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_DOCUMENT_BYTES:
                    raise error(f"{what}: the response is larger than {MAX_DOCUMENT_BYTES} bytes")
                chunks.append(chunk)
            return Fetched(response.status_code, response.headers, b"".join(chunks))
    except httpx.HTTPError as exc:
        raise error(f"{what}: {type(exc).__name__}: {exc}") from exc


async def afetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    what: str,
    error: type[IssuerError] = IssuerError,
    **kwargs: Any,
) -> Fetched:
    """Async :func:`fetch`."""
    try:
        async with client.stream("GET", url, **kwargs) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_DOCUMENT_BYTES:
                    raise error(f"{what}: the response is larger than {MAX_DOCUMENT_BYTES} bytes")
                chunks.append(chunk)
            return Fetched(response.status_code, response.headers, b"".join(chunks))
    except httpx.HTTPError as exc:
        raise error(f"{what}: {type(exc).__name__}: {exc}") from exc


def parse_json(fetched: Fetched, *, what: str, error: type[IssuerError] = IssuerError) -> Any:
    """The JSON body of a 200 response.

    Raises:
        IssuerError: (the ``error`` subclass) another status, or not JSON.
    """
    if fetched.status_code != 200:
        raise error(f"{what}: HTTP {fetched.status_code}")
    try:
        return json.loads(fetched.body)
    except ValueError:
        raise error(f"{what}: the response is not JSON") from None


def propagate_trace(config: ServiceConfig, request: httpx.Request) -> None:
    """With ``otel``, put the current trace context (``traceparent``) on a call to another service.

    The callee's spans then join the caller's trace (W3C Trace Context), even
    when the application's own httpx client is not instrumented.
    """
    if config.otel:
        from authmesh.tracing import inject_trace_context

        inject_trace_context(request.headers)


def basic_authorization(client_id: str, client_secret: str) -> str:
    """An HTTP Basic ``Authorization`` value for client credentials.

    RFC 6749 §2.3.1: the id and the secret are form-urlencoded before the
    RFC 7617 encoding (so a ``:`` or non-ASCII in a secret survives).
    """
    raw = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode("ascii")
    return "Basic " + base64.b64encode(raw).decode("ascii")
