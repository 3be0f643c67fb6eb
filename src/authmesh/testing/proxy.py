"""A TCP proxy that a test can kill or freeze, to put an outage between a program and its database.

Point the program at :attr:`TcpProxy.port` instead of the real server's port;
then :meth:`~TcpProxy.kill` makes every connection fail (open ones are reset,
new ones refused) and :meth:`~TcpProxy.freeze` makes the network silent
(connections stay open and are even accepted, but no byte moves in either
direction: a partition). :meth:`~TcpProxy.restore` ends either.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from typing import Any, Literal

__all__ = ["TcpProxy"]

_CHUNK = 65536
State = Literal["up", "killed", "frozen"]


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target_host:target_port`` from a daemon thread."""

    def __init__(self, target_host: str, target_port: int, *, port: int = 0) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = port
        self._state: State = "up"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections_accepted = 0

    @property
    def state(self) -> State:
        """``up``, ``killed`` or ``frozen``."""
        return self._state

    @property
    def address(self) -> tuple[str, int]:
        """Where to connect instead of the target: ``("127.0.0.1", port)``."""
        return ("127.0.0.1", self.port)

    def start(self) -> TcpProxy:
        """Bind the port and start forwarding."""
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._flowing = asyncio.Event()
            self._flowing.set()
            loop.run_until_complete(self._listen())
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="authmesh-tcp-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the TCP proxy did not start")
        return self

    def stop(self) -> None:
        """Close everything and end the thread."""
        if self._loop is None:
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = self._thread = None

    def kill(self) -> None:
        """Reset open connections and refuse new ones, as a crashed server would."""
        self._call(self._kill())

    def freeze(self) -> None:
        """Stop every byte in both directions, without closing anything."""
        assert self._flowing is not None
        self._state = "frozen"
        loop, flowing = self._loop, self._flowing
        assert loop is not None
        loop.call_soon_threadsafe(flowing.clear)

    def restore(self) -> None:
        """Forward again after :meth:`kill` or :meth:`freeze`."""
        self._call(self._restore())

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None, "the proxy is not running"
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        future.result(10)

    async def _listen(self) -> None:
        # SO_REUSEADDR lets a killed proxy bind its port again at once.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._serve, sock=sock)

    async def _kill(self) -> None:
        self._state = "killed"
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            _reset(writer)
        self._writers.clear()

    async def _restore(self) -> None:
        assert self._flowing is not None
        if self._server is None:
            await self._listen()
        self._state = "up"
        self._flowing.set()

    async def _shutdown(self) -> None:
        await self._kill()
        assert self._flowing is not None
        self._flowing.set()
        # Connections still being served (or waiting for a frozen network) end here,
        # rather than as pending tasks destroyed with the loop.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _serve(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        self.connections_accepted += 1
        assert self._flowing is not None
        upstream: asyncio.StreamWriter | None = None
        try:
            await self._flowing.wait()
            try:
                upstream_reader, upstream = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
            except OSError:
                _reset(client)
                return
            if self._state == "killed":
                _reset(client)
                _reset(upstream)
                return
            self._writers.update((client, upstream))
            await asyncio.gather(
                self._pipe(client_reader, upstream),
                self._pipe(upstream_reader, client),
            )
        finally:
            # However the connection ends (closed, killed, or the proxy stopping).
            for writer in (client, upstream):
                if writer is not None:
                    self._writers.discard(writer)
                    if not writer.is_closing():
                        _reset(writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        try:
            while True:
                data = await reader.read(_CHUNK)
                # A frozen proxy holds what it read, as a silent network would.
                await self._flowing.wait()
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN, so the peer sees a failure, not an orderly end."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError, RuntimeError):
        writer.transport.abort()
