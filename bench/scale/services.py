"""``python -m bench.scale.services N``: N SDK services in one process, driven over stdin.

Each service is a :class:`~authmesh.service.ServiceAuth` of its own, following
the revocation feed through the balancer in its own thread, exactly as N
separate WSGI services would (one process keeps 20 of them cheap on 2 cores).

- ``watch ID TOKEN`` → ``ok ID`` once every service accepts the token
  (``bad ID INDEX REASON`` if one does not); from then on each service checks
  the token after every event its feed applies (and every 50 ms as a safety
  net) and prints ``revoked ID INDEX WALL_CLOCK_TIME`` on its first rejection;
- EOF → stop the services and exit.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from typing import Any

from authmesh.jose.errors import TokenRejected
from authmesh.service import ServiceAuth, ServiceConfig

__all__ = ["main"]

_out_lock = threading.Lock()


def _out(line: str) -> None:
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class WatchedService:
    """One service and the tokens it waits to see revoked."""

    def __init__(self, index: int, auth: ServiceAuth) -> None:
        self.index = index
        self.auth = auth
        self._watched: dict[str, str] = {}
        self._lock = threading.Lock()
        feed: Any = auth.feed
        assert feed is not None, "the services follow the feed"
        original = feed._apply

        def apply_then_check(item: object) -> None:
            original(item)
            self.check()

        feed._apply = apply_then_check

    def watch(self, ident: str, token: str) -> str | None:
        """Start watching; the rejection reason if the token is refused already."""
        try:
            self.auth.verify(token)
        except TokenRejected as exc:
            return exc.reason
        with self._lock:
            self._watched[ident] = token
        return None

    def check(self) -> None:
        with self._lock:
            for ident, token in list(self._watched.items()):
                try:
                    self.auth.verify(token)
                except TokenRejected:
                    now = time.time()
                    del self._watched[ident]
                    _out(f"revoked {ident} {self.index} {now:.6f}")


def main() -> None:
    """Serve commands until stdin closes."""
    # The feed reconnecting after a replica is killed is expected here, not news.
    logging.getLogger("authmesh").setLevel(logging.ERROR)
    count, first = int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0
    clients: dict[str, str] = json.loads(os.environ["SCALE_CLIENTS"])
    services = []
    for i in range(count):
        name = f"svc-{first + i}"  # each service is a client of its own
        config = ServiceConfig(
            issuer=os.environ["SCALE_ISSUER"],
            audience=os.environ["SCALE_AUDIENCE"],
            client_id=name,
            client_secret=clients[name],
        )
        auth = ServiceAuth(config)
        auth.start(wait=30)
        services.append(WatchedService(first + i, auth))

    def safety_net() -> None:
        while True:
            time.sleep(0.05)
            for service in services:
                service.check()

    threading.Thread(target=safety_net, daemon=True).start()
    _out("ready")
    for line in sys.stdin:
        command, ident, token = [*line.split(), "", "", ""][:3]
        if command != "watch":
            continue
        refused = [(s.index, s.watch(ident, token)) for s in services]
        bad = [f"{index} {reason}" for index, reason in refused if reason is not None]
        _out(f"bad {ident} {bad[0]}" if bad else f"ok {ident}")
    for service in services:
        service.auth.stop()


if __name__ == "__main__":
    main()
