"""Who follows the revocation feed, and how far behind each follower is.

Every open stream (``GET /revocations/stream``) is a :class:`Follower` in the
process's :class:`FollowerRegistry` (``ctx.hub.followers``) from the moment it is
accepted until it closes: the service client, the replica it says it is, where
it connects from, when, the last cursor sent to it and when. The registry also
remembers when the head of the log moved, so it can say how long a follower
has been behind, not only by how many events.

It enforces the per-client stream limit (``feed_max_streams_per_client``): a
client over it is answered 429 with ``Retry-After`` before any stream is set up.

It lives in memory, per server process, and costs a few attribute writes per
frame sent: nothing touches the database. A deployment of several server
replicas has one registry in each; each lists the streams it serves (its
``server`` name says which), and with Redis the console's live view gathers
them all (:mod:`~authmesh.server.feed.board`).
"""

from __future__ import annotations

import bisect
import os
import secrets
import socket
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TypedDict

from authmesh.jose.policy import Clock
from authmesh.server.errors import StreamLimitReached

__all__ = [
    "STREAM_LIMIT_RETRY_AFTER",
    "Follower",
    "FollowerJSON",
    "FollowerRegistry",
    "StreamLimitReached",
    "replica_label",
]

#: Seconds a client over its stream limit is asked to wait (a stream may close by then).
STREAM_LIMIT_RETRY_AFTER = 5
#: Deliveries kept per follower, newest last (for "when did each service get event N").
DELIVERIES_KEPT = 32
#: Moves of the head kept, to date how long a follower has been behind.
HEAD_MOVES_KEPT = 4096
_MAX_LABEL = 100


def replica_label(value: str | None) -> str | None:
    """A follower's self-declared replica name, reduced to printable ASCII, or ``None``."""
    if not value:
        return None
    text = "".join(ch for ch in value if " " < ch <= "~")[:_MAX_LABEL]
    return text or None


class FollowerJSON(TypedDict):
    """A follower as an admin view shows it (times are Unix seconds)."""

    stream_id: str
    client_id: str
    replica: str
    server: str
    remote_addr: str | None
    user_agent: str | None
    connected_at: float
    start_cursor: int
    cursor: int
    events_sent: int
    last_event_at: float | None
    last_seen_at: float
    head: int
    behind_events: int
    behind_ms: float
    deliveries: list[tuple[int, float]]


@dataclass(slots=True, kw_only=True, eq=False)
class Follower:
    """One open feed stream. Times are the server clock's (Unix seconds)."""

    stream_id: str
    """Random id of this stream, unique in the process."""
    client_id: str
    """The service client reading it (authenticated by HTTP Basic)."""
    replica: str
    """Which instance of the service: its ``Authmesh-Replica`` header, else ``address:port``."""
    server: str
    """The auth-server process serving it: ``hostname:pid``."""
    remote_addr: str | None
    user_agent: str | None
    connected_at: float
    start_cursor: int
    """The cursor it resumed after (``Last-Event-ID`` or ``?after=``)."""
    cursor: int
    """The cursor it has been sent everything up to: its last event, or the
    ``latest_cursor`` of its last heartbeat (events past their expiry are not sent).
    SSE has no acknowledgement: sent, maybe not yet read."""
    events_sent: int = 0
    last_event_at: float | None = None
    """When the last event was written to it."""
    last_seen_at: float
    """When the last frame (event or heartbeat) was written to it."""
    deliveries: deque[tuple[int, float]] = field(
        default_factory=lambda: deque(maxlen=DELIVERIES_KEPT)
    )
    """``(cursor, sent_at)`` of its latest events, oldest first."""

    def sent_event(self, cursor: int, at: float) -> None:
        """Record an event written to the stream."""
        self.cursor = cursor
        self.events_sent += 1
        self.last_event_at = self.last_seen_at = at
        self.deliveries.append((cursor, at))

    def sent_heartbeat(self, at: float, latest_cursor: int) -> None:
        """Record a heartbeat written to the stream: it is caught up to ``latest_cursor``."""
        self.cursor = max(self.cursor, latest_cursor)
        self.last_seen_at = at


class FollowerRegistry:
    """The open feed streams of this process, per client, with the stream limit.

    Args:
        max_per_client: open streams a client may have here; 0 means no limit.
        clock: the server clock (Unix seconds).
        server: this process's name (default ``hostname:pid``).
    """

    def __init__(self, *, max_per_client: int, clock: Clock, server: str | None = None) -> None:
        self.max_per_client = max_per_client
        self._clock = clock
        self.server = server or f"{socket.gethostname()}:{os.getpid()}"
        self._followers: dict[str, Follower] = {}
        self._per_client: Counter[str] = Counter()
        self._head_cursors: deque[int] = deque(maxlen=HEAD_MOVES_KEPT)
        self._head_times: deque[float] = deque(maxlen=HEAD_MOVES_KEPT)
        #: Streams refused for the limit since start.
        self.refused = 0

    # -- the head of the log -----------------------------------------------------------

    @property
    def head(self) -> int:
        """The newest cursor this process knows of."""
        return self._head_cursors[-1] if self._head_cursors else 0

    def note_head(self, cursor: int) -> None:
        """Record that the head moved to ``cursor`` now (the hub calls this)."""
        if cursor > self.head:
            self._head_cursors.append(cursor)
            self._head_times.append(self._clock())

    def behind_since(self, cursor: int) -> float | None:
        """When the first cursor after ``cursor`` became known; ``None`` if caught up.

        Older moves than the registry keeps date from the oldest one kept (a lower
        bound on the lag).
        """
        if cursor >= self.head:
            return None
        # deque supports indexing; copy to a list for bisect (a few thousand ints at most).
        at = bisect.bisect_right(list(self._head_cursors), cursor)
        return self._head_times[min(at, len(self._head_times) - 1)]

    # -- streams -------------------------------------------------------------------------

    def open(
        self,
        *,
        client_id: str,
        cursor: int,
        remote_addr: str | None = None,
        remote_port: int | None = None,
        replica: str | None = None,
        user_agent: str | None = None,
    ) -> Follower:
        """Register a new stream of ``client_id`` resuming after ``cursor``.

        Raises:
            StreamLimitReached: the client already has ``max_per_client`` streams here.
        """
        self.check_room(client_id)
        now = self._clock()
        label = replica_label(replica)
        if label is None:
            label = f"{remote_addr}:{remote_port}" if remote_addr else "unknown"
        follower = Follower(
            stream_id=secrets.token_hex(8),
            client_id=client_id,
            replica=label,
            server=self.server,
            remote_addr=remote_addr,
            user_agent=(user_agent or "")[:200] or None,
            connected_at=now,
            start_cursor=cursor,
            cursor=cursor,
            last_seen_at=now,
        )
        self._followers[follower.stream_id] = follower
        self._per_client[client_id] += 1
        return follower

    def check_room(self, client_id: str) -> None:
        """Raise :class:`StreamLimitReached` if ``client_id`` may not open another stream."""
        limit = self.max_per_client
        if limit and self._per_client[client_id] >= limit:
            self.refused += 1
            raise StreamLimitReached(
                f"this client already has {limit} open revocation-feed streams",
                retry_after=STREAM_LIMIT_RETRY_AFTER,
            )

    def close(self, follower: Follower) -> None:
        """Unregister a stream (idempotent)."""
        if self._followers.pop(follower.stream_id, None) is None:
            return
        left = self._per_client[follower.client_id] - 1
        if left > 0:
            self._per_client[follower.client_id] = left
        else:
            del self._per_client[follower.client_id]

    def count(self, client_id: str | None = None) -> int:
        """Open streams, of one client or in all."""
        if client_id is None:
            return len(self._followers)
        return self._per_client[client_id]

    def followers(self) -> list[Follower]:
        """The open streams, oldest first (the live objects: read, don't change)."""
        return sorted(self._followers.values(), key=lambda f: f.connected_at)

    # -- what an admin view shows ---------------------------------------------------------

    def describe(self, follower: Follower) -> FollowerJSON:
        """A follower with its lag: events behind the head, and for how long (ms)."""
        now = self._clock()
        head = max(self.head, follower.cursor)
        since = self.behind_since(follower.cursor)
        return {
            "stream_id": follower.stream_id,
            "client_id": follower.client_id,
            "replica": follower.replica,
            "server": follower.server,
            "remote_addr": follower.remote_addr,
            "user_agent": follower.user_agent,
            "connected_at": follower.connected_at,
            "start_cursor": follower.start_cursor,
            "cursor": follower.cursor,
            "events_sent": follower.events_sent,
            "last_event_at": follower.last_event_at,
            "last_seen_at": follower.last_seen_at,
            "head": head,
            "behind_events": head - follower.cursor,
            "behind_ms": 0.0 if since is None else round(max(0.0, now - since) * 1000, 1),
            "deliveries": list(follower.deliveries),
        }

    def snapshot(self) -> list[FollowerJSON]:
        """Every open stream, described, oldest first."""
        return [self.describe(f) for f in self.followers()]
