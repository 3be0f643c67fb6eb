"""``python -m bench.scale.followers N FIRST URL``: N lightweight revocation-feed followers.

Each follower is one raw HTTP/1.1 connection to ``GET /revocations/stream``
(HTTP Basic as a service client: ``SCALE_CLIENTS`` is a JSON list of
``[client_id, secret]``, and follower *i* of the whole group uses entry
``i // SCALE_STREAMS_PER_CLIENT``; this process runs followers ``FIRST`` to
``FIRST + N - 1``) that notes the instant it first sees each revocation
event's ``id``. Far cheaper than an SDK subscriber, so that 1,000 of them fit
in a few processes beside the server on 2 cores; SSE frames are small and
written one per chunk, so finding ``id: N\\nevent: revocation`` in the bytes
is enough here (the SDK has the full parser).

Protocol on stdin/stdout: prints ``ready N`` once every stream is open;
``arm CURSOR`` → ``done INSTANT`` once every follower has seen an event after
``CURSOR``, ``INSTANT`` being the latest of their first sightings (wall clock).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import sys
import time
from typing import Any
from urllib.parse import urlsplit

__all__ = ["main"]

_EVENT = re.compile(rb"id: (\d+)\nevent: revocation")


class Follower:
    """One stream and the newest event it has seen, with when."""

    def __init__(self) -> None:
        self.newest = 0
        self.seen_at: dict[int, float] = {}
        self.changed = asyncio.Event()
        self.ready = asyncio.Event()

    async def follow(
        self, host: str, port: int, authorization: str, gate: asyncio.Semaphore
    ) -> None:
        """Open the stream (at most a few at a time), then read it until it ends."""
        async with gate:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(
                f"GET /revocations/stream HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: {authorization}\r\nAccept: text/event-stream\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"the stream was refused: {head[:100]!r}")
        self.ready.set()
        tail = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                raise RuntimeError("the stream ended")
            now = time.time()
            data = tail + chunk
            for match in _EVENT.finditer(data):
                cursor = int(match[1])
                if cursor > self.newest:
                    self.newest = cursor
                    self.seen_at[cursor] = now
                    self.changed.set()
            tail = data[-64:]


async def _main(count: int, first: int, url: str) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    clients = json.loads(os.environ["SCALE_CLIENTS"])
    per_client = int(os.environ["SCALE_STREAMS_PER_CLIENT"])
    headers = [
        "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()
        for name, secret in clients
    ]
    followers = [Follower() for _ in range(count)]
    gate = asyncio.Semaphore(25)  # don't open them all in the same instant
    tasks = [
        asyncio.create_task(f.follow(host, port, headers[(first + i) // per_client], gate))
        for i, f in enumerate(followers)
    ]
    # Done when every stream is open, or as soon as one follower fails.
    waiters: list[asyncio.Future[Any]] = [
        asyncio.gather(*(f.ready.wait() for f in followers)),
        *tasks,
    ]
    await asyncio.wait(waiters, timeout=120, return_when="FIRST_COMPLETED")
    for task in tasks:
        if task.done():
            task.result()  # a follower failed: say why
    if not all(f.ready.is_set() for f in followers):
        raise RuntimeError("the streams did not open in 120 s")
    print(f"ready {count}", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command, _, arg = line.strip().partition(" ")
        if command != "arm":
            continue
        after = int(arg)
        for task in tasks:
            if task.done():
                task.result()  # a follower failed: say why
        for f in followers:
            while f.newest <= after:
                f.changed.clear()
                await asyncio.wait_for(f.changed.wait(), 30)
        latest = max(min(at for c, at in f.seen_at.items() if c > after) for f in followers)
        print(f"done {latest:.6f}", flush=True)
        for f in followers:
            f.seen_at = {c: at for c, at in f.seen_at.items() if c > after}
    for task in tasks:
        task.cancel()


def main() -> None:
    """``N FIRST URL`` on the command line."""
    asyncio.run(_main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))


if __name__ == "__main__":
    main()
