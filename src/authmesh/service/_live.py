"""Open connections (WebSockets, streamed responses), closed when their token is revoked.

A request is answered once, but a WebSocket, a server-sent-events stream or a
GraphQL subscription keeps serving the token it opened with. Each registers
here with the claims it was authenticated by and a way to end it; every event
the revocation feed applies is matched against them with the one rule of
:mod:`authmesh.revocation` (:meth:`RevocationEvent.covers`), so they end within
the same latency as new requests are refused.

Events arrive on the subscriber's thread or loop; a connection is ended on its
own loop (``call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from typing import Any

from authmesh.revocation import RevocationEvent, RevocationKind, revocation_keys

__all__ = ["LiveConnection", "LiveConnections"]


class LiveConnection:
    """One open connection: the claims it serves, and how to end it."""

    __slots__ = ("_end", "_loop", "claims", "keys", "revoked")

    def __init__(
        self,
        claims: Mapping[str, Any],
        end: Callable[[], object],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.claims = claims
        self.keys = revocation_keys(claims)
        self._end = end
        self._loop = loop
        self.revoked = False

    def revoke(self) -> None:
        """End the connection on its loop (once)."""
        if self.revoked:
            return
        self.revoked = True
        try:
            self._loop.call_soon_threadsafe(self._end)
        except RuntimeError:  # its loop is closed: the connection is gone already
            pass


class LiveConnections:
    """The open connections of one service, indexed by what an event can name."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[RevocationKind, str], set[LiveConnection]] = {}
        self._lock = threading.Lock()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def register(self, claims: Mapping[str, Any], end: Callable[[], object]) -> LiveConnection:
        """Watch a connection opened with these claims; ``end`` runs on the current loop."""
        connection = LiveConnection(claims, end, asyncio.get_running_loop())
        with self._lock:
            for key in connection.keys:
                self._by_key.setdefault(key, set()).add(connection)
            self._count += 1
        return connection

    def unregister(self, connection: LiveConnection) -> None:
        """Stop watching (the connection ended by itself or was ended)."""
        with self._lock:
            for key in connection.keys:
                watchers = self._by_key.get(key)
                if watchers is not None:
                    watchers.discard(connection)
                    if not watchers:
                        del self._by_key[key]
            self._count -= 1

    def on_event(self, event: RevocationEvent) -> int:
        """End every connection ``event`` covers; how many."""
        with self._lock:
            candidates = list(self._by_key.get((event.kind, event.value), ()))
        ended = 0
        for connection in candidates:
            if not connection.revoked and event.covers(connection.claims):
                connection.revoke()
                ended += 1
        return ended
