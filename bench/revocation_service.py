"""``python -m bench.revocation_service``: one small service of the ``revocation`` part.

A :class:`~authmesh.service.ServiceAuth` following the revocation feed in its
thread (as a WSGI service would), driven over stdin/stdout:

- ``watch TOKEN`` → ``ok`` once the token is accepted (``bad REASON`` if not);
  from then on, every event the feed applies is followed by a check of that
  token, and the first rejection prints ``revoked WALL_CLOCK_TIME``;
- EOF → exit.

Checking right after each applied event (and every 50 ms as a safety net)
timestamps the first moment a request with the token would be refused, without
a busy poll competing for the two cores.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from authmesh.jose.errors import TokenRejected
from authmesh.service import ServiceAuth, ServiceConfig

__all__ = ["main"]


def main() -> None:
    """Serve commands until stdin closes."""
    auth = ServiceAuth(
        ServiceConfig(
            issuer=os.environ["BENCH_ISSUER"],
            audience=os.environ["BENCH_AUDIENCE"],
            client_id=os.environ["BENCH_CLIENT_ID"],
            client_secret=os.environ["BENCH_CLIENT_SECRET"],
        )
    )
    auth.start(wait=10)
    lock = threading.Lock()
    watched: list[str] = []

    def out(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def check() -> None:
        with lock:
            if not watched:
                return
            try:
                auth.verify(watched[0])
            except TokenRejected:
                now = time.time()
                watched.clear()
                out(f"revoked {now:.6f}")

    feed: Any = auth.feed
    assert feed is not None
    original = feed._apply

    def apply_then_check(item: object) -> None:
        original(item)
        check()

    feed._apply = apply_then_check

    def safety_net() -> None:
        while True:
            time.sleep(0.05)
            check()

    threading.Thread(target=safety_net, daemon=True).start()
    out("ready")
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "watch":
            try:
                auth.verify(arg)
            except TokenRejected as exc:
                out(f"bad {exc.reason}")
                continue
            with lock:
                watched[:] = [arg]
            out("ok")
    auth.stop()


if __name__ == "__main__":
    main()
