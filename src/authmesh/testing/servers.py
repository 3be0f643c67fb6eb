"""Real HTTP servers on free loopback ports, in threads: uvicorn (ASGI), werkzeug (WSGI)."""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import uvicorn
    from werkzeug.serving import BaseWSGIServer

__all__ = ["UvicornThread", "WerkzeugThread"]


class UvicornThread:
    """An ASGI app served by uvicorn in a daemon thread; restartable on the same port.

    ``port=0`` (the default) binds a free port; :attr:`url` tells which. The
    socket is bound before the server starts, so there is no race for the port.
    WebSockets are off unless ``ws="websockets-sansio"``.
    """

    def __init__(
        self,
        app: Any,
        *,
        port: int = 0,
        lifespan: Literal["auto", "on", "off"] = "on",
        ws: Literal["none", "websockets-sansio"] = "none",
    ) -> None:
        self.app = app
        self.port = port
        self.lifespan = lifespan
        self.ws = ws
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> UvicornThread:
        """Bind, serve, and wait until started (the app's lifespan included).

        Raises:
            RuntimeError: the server thread died or did not start within ``timeout``.
        """
        import uvicorn

        # proto=IPPROTO_TCP, or asyncio skips TCP_NODELAY on accepted connections and
        # Nagle plus delayed ACKs add ~40 ms to every response.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(
            self.app,
            lifespan=self.lifespan,
            log_level="warning",
            loop="asyncio",
            http="h11",
            ws=self.ws,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._server = server
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Shut down (the lifespan's shutdown included) and wait; the port is kept."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> UvicornThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WerkzeugThread:
    """A WSGI app (Flask) served by werkzeug's threaded server in a daemon thread.

    ``port=0`` (the default) binds a free port; :attr:`url` tells which.
    """

    def __init__(self, app: Any, *, port: int = 0) -> None:
        self.app = app
        self.port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``."""
        assert self._server is not None, "the server is not running"
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> WerkzeugThread:
        """Bind the port (a free one by default) and serve."""
        from werkzeug.serving import make_server

        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut down and wait."""
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(10)
        if self._server is not None:
            self._server.server_close()
        self._server = self._thread = None

    def __enter__(self) -> WerkzeugThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
