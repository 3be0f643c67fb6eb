"""How the auth server is put on the network: one uvicorn setup for ``authmesh serve``
and for the test kit's servers, so what is tested is what runs.

* :func:`uvicorn_config`: address, TLS, and the HTTP protocol with read
  timeouts and a header size bound (:func:`http_protocol`,
  :mod:`authmesh.server.slow_clients`); ``--workers`` gives its workers the same
  protocol by name (``authmesh.server.workers``);
* :class:`AuthServer`: a ``uvicorn.Server`` that ends the revocation-feed streams
  when it shuts down, so a graceful stop does not wait on subscribers that never
  hang up (they reconnect to the next server at once).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI

from authmesh.server.config import ServerSettings
from authmesh.server.context import ServerContext
from authmesh.server.slow_clients import protocol_class

__all__ = ["AuthServer", "header_parser_bound", "http_protocol", "uvicorn_config"]


def http_protocol(settings: ServerSettings) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol with the read timeouts and header bound of ``settings``."""
    return protocol_class(
        header_timeout=settings.http_header_timeout,
        body_timeout=settings.http_body_timeout,
        max_header_bytes=settings.http_max_header_bytes,
    )


def header_parser_bound(settings: ServerSettings) -> int:
    """h11's own header bound, past ours: h11 answers a bare 400, ours the 431."""
    return 2 * settings.http_max_header_bytes


def uvicorn_config(app: FastAPI, settings: ServerSettings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration serving ``app`` as ``settings`` say; ``overrides`` win."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "ssl_certfile": str(settings.tls_cert) if settings.tls_cert else None,
        "ssl_keyfile": str(settings.tls_key) if settings.tls_key else None,
        # A balancer's X-Forwarded-For is believed only from the proxies named:
        # anyone else could put any address there and dodge the per-address limits.
        "proxy_headers": settings.trusted_proxies is not None,
        "forwarded_allow_ips": settings.trusted_proxies,
        "http": http_protocol(settings),
        "h11_max_incomplete_event_size": header_parser_bound(settings),
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


class AuthServer(uvicorn.Server):
    """uvicorn's server, ending the feed streams of ``app`` on shutdown."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        app = config.app
        context = getattr(getattr(app, "state", None), "context", None)
        self._context: ServerContext | None = context

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Drain the feed, then shut down as uvicorn does."""
        if self._context is not None:
            self._context.hub.drain()
        await super().shutdown(sockets)
