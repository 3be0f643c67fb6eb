"""``python -m bench.scale.followers N FIRST URL``: N lightweight revocation-feed followers.

Each follower is one raw HTTP/1.1 connection to ``GET /revocations/stream``
(HTTP Basic as a service client: ``SCALE_CLIENTS`` is a JSON list of
``[client_id, secret]``, and follower *i* of the whole group uses entry
``i // SCALE_STREAMS_PER_CLIENT``; this process runs followers ``FIRST`` to
``FIRST + N - 1``) that notes the instant it first sees each revocation
event's ``id``.

All of them are read by one thread over one ``epoll`` (``selectors``): a
readable socket costs one ``recv`` and a search of its bytes, a few
microseconds, so 1,000 followers take little of the cores the measured
server also runs on (an asyncio task per follower cost several times more).
SSE frames are small and written one write per wake-up, so finding
``id: N\\nevent: revocation`` in the bytes is enough here (the SDK has the full
parser). The instant of a sighting is when ``epoll`` reported the socket
readable: every socket of one report shares it, so a follower read late in a
report is not counted late for the reading.

Protocol on stdin/stdout: prints ``ready N`` once every stream is open;
``arm CURSOR`` → ``done INSTANT`` once every follower has seen an event after
``CURSOR``, ``INSTANT`` being the latest of their first sightings (wall clock).
"""

from __future__ import annotations

import base64
import json
import os
import re
import selectors
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

__all__ = ["main"]

_EVENT = re.compile(rb"id: (\d+)\nevent: revocation")
#: Streams opened at the same time (each open authenticates a client on the server).
OPEN_AT_ONCE = 25
_STDIN = 0


class Follower:
    """One stream and the revocation events it has seen, with when."""

    __slots__ = ("newest", "seen_at", "sock", "tail")

    def __init__(self, sock: socket.socket, first_bytes: bytes) -> None:
        self.sock = sock
        self.newest = 0
        self.seen_at: dict[int, float] = {}
        self.tail = b""
        self.read(first_bytes, time.time())

    def read(self, chunk: bytes, now: float) -> bool:
        """Note the events in ``chunk``; whether a new one was seen."""
        data = self.tail + chunk
        new = False
        for match in _EVENT.finditer(data):
            cursor = int(match[1])
            if cursor > self.newest:
                self.newest = cursor
                self.seen_at[cursor] = now
                new = True
        self.tail = data[-64:]
        return new

    def first_after(self, after: int) -> float:
        """When it first saw an event after ``after``."""
        return min(at for cursor, at in self.seen_at.items() if cursor > after)


def _open(host: str, port: int, authorization: str) -> Follower:
    """Connect, ask for the stream, check the answer is 200; non-blocking from then on."""
    sock = socket.create_connection((host, port), timeout=60)
    sock.sendall(
        f"GET /revocations/stream HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: {authorization}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("the stream was closed before its headers")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"the stream was refused: {head[:100]!r}")
    sock.setblocking(False)
    return Follower(sock, body)


class _Group:
    """Every follower of this process and the ``arm``/``done`` bookkeeping."""

    def __init__(self, followers: list[Follower]) -> None:
        self.followers = followers
        self.after: int | None = None
        self.waiting: set[Follower] = set()

    def arm(self, after: int) -> None:
        self.after = after
        self.waiting = {f for f in self.followers if f.newest <= after}
        self._maybe_done()

    def saw(self, follower: Follower) -> None:
        if self.after is not None and follower.newest > self.after:
            self.waiting.discard(follower)
            self._maybe_done()

    def _maybe_done(self) -> None:
        after = self.after
        if after is None or self.waiting:
            return
        latest = max(f.first_after(after) for f in self.followers)
        print(f"done {latest:.6f}", flush=True)
        for f in self.followers:
            f.seen_at = {c: at for c, at in f.seen_at.items() if c > after}
        self.after = None


def _serve(group: _Group) -> None:
    """Read every stream and stdin until stdin closes."""
    sel = selectors.DefaultSelector()
    for f in group.followers:
        sel.register(f.sock, selectors.EVENT_READ, f)
    sel.register(_STDIN, selectors.EVENT_READ, None)
    pending = b""
    while True:
        ready = sel.select()
        now = time.time()
        for key, _ in ready:
            follower: Follower | None = key.data
            if follower is not None:
                chunk = follower.sock.recv(65536)
                if not chunk:
                    raise RuntimeError("a stream ended")
                if follower.read(chunk, now):
                    group.saw(follower)
                continue
            command = os.read(_STDIN, 4096)
            if not command:
                return
            pending += command
            while b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                verb, _, arg = line.decode().strip().partition(" ")
                if verb == "arm":
                    group.arm(int(arg))


def main() -> None:
    """``N FIRST URL`` on the command line."""
    count, first, url = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    clients = json.loads(os.environ["SCALE_CLIENTS"])
    per_client = int(os.environ["SCALE_STREAMS_PER_CLIENT"])
    headers = [
        "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()
        for name, secret in clients
    ]
    with ThreadPoolExecutor(OPEN_AT_ONCE) as pool:
        followers = list(
            pool.map(lambda i: _open(host, port, headers[(first + i) // per_client]), range(count))
        )
    print(f"ready {count}", flush=True)
    _serve(_Group(followers))


if __name__ == "__main__":
    main()
