"""The live revocation events, held in memory and indexed for a lookup per request.

Three indexes, one per kind of :class:`~authmesh.revocation.RevocationEvent`,
laid out from the rule in :mod:`authmesh.revocation`:

* a kind in ``ISSUED_BEFORE`` (``sub``) → the latest ``not_before``: a token
  of that subject issued before it is revoked;
* the others (``sid``, ``jti``) → the revoked sessions and token ids.

Memory stays bounded and small: no event object is retained, only the value
string and a shared expiry-bucket number per entry. An event is dropped once its
``expires_at`` has passed, i.e. once every token it could cover has expired
anyway. Pruning works by
time buckets, so it may keep an event up to one bucket longer: keeping an
expired event is always safe, dropping a live one never happens.

Written by one subscriber (thread or task) and read by any number of request
handlers: every read is a single dict lookup, atomic under the GIL.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from typing import Any

from authmesh.jose.policy import Clock
from authmesh.revocation import ISSUED_BEFORE, RevocationEvent, issued_at

__all__ = ["RevocationState"]


class RevocationState:
    """Revoked subjects, sessions and token ids, plus the feed's cursor and liveness.

    Args:
        clock: wall-clock time, compared with the events' ``expires_at``.
        monotonic: the clock of ``last_heard`` and the staleness bound.
        bucket_seconds: granularity of pruning.
    """

    __slots__ = (
        "_bucket_heap",
        "_bucket_seconds",
        "_buckets",
        "_clock",
        "_jti",
        "_monotonic",
        "_sid",
        "_sub_bucket",
        "_sub_nb",
        "connected_once",
        "cursor",
        "last_heard",
        "latest_cursor",
        "listeners",
        "started_at",
    )

    def __init__(
        self,
        *,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        bucket_seconds: int = 10,
    ) -> None:
        self._clock = clock
        self._monotonic = monotonic
        self._bucket_seconds = bucket_seconds
        self._sub_nb: dict[str, float] = {}
        self._sub_bucket: dict[str, int] = {}
        self._sid: dict[str, int] = {}
        self._jti: dict[str, int] = {}
        # bucket -> (bucket, subs, sids, jtis) expiring in it; the bucket's int
        # object is shared by every index entry pointing at it (no int per event).
        self._buckets: dict[int, tuple[int, list[str], list[str], list[str]]] = {}
        self._bucket_heap: list[int] = []
        self.cursor = 0
        """The cursor of the last event applied (what ``Last-Event-ID`` resumes after)."""
        self.latest_cursor = 0
        """The newest cursor the issuer reported (heartbeats, pages)."""
        self.started_at = monotonic()
        self.last_heard = self.started_at
        """When the feed last spoke; before the first word, when tracking started."""
        self.connected_once = False
        self.listeners: list[Callable[[RevocationEvent], object]] = []
        """Called with every live event applied (e.g. to end open connections it covers)."""

    # -- the request path ------------------------------------------------------------

    def covering(self, sub: str, sid: str | None, jti: str, iat: float) -> str | None:
        """The kind of a live event that revokes this token, or ``None``.

        The rule of :mod:`authmesh.revocation` unrolled into three lookups (the
        request path): ``iat`` is :func:`~authmesh.revocation.issued_at`'s.
        """
        if self._sub_nb:
            nb = self._sub_nb.get(sub)
            if nb is not None and iat < nb:
                return "sub"
        # Empty sets are the common case: testing them first leaves the token's own
        # strings untouched (their hashes live in them, in memory the request has not read).
        if self._sid and sid is not None and sid in self._sid:
            return "sid"
        if self._jti and jti in self._jti:
            return "jti"
        return None

    def refusal(
        self, sub: str, sid: str | None, jti: str, iat: float, max_stale: float
    ) -> str | None:
        """What refuses this token on a request now: the kind of a live event that revokes
        it (:meth:`covering`), or ``"stale"`` when the feed has been silent for longer than
        ``max_stale`` seconds; ``None``: nothing.

        Both checks of every request in one call: with no live event (the common case)
        the revocation rule is not even called.
        """
        if self._sub_nb or self._sid or self._jti:
            kind = self.covering(sub, sid, jti, iat)
            if kind is not None:
                return kind
        if self._monotonic() - self.last_heard > max_stale:
            return "stale"
        return None

    def is_revoked(self, claims: dict[str, Any]) -> bool:
        """Whether a live event covers a token with these (verified) claims."""
        return (
            self.covering(
                str(claims.get("sub")), claims.get("sid"), str(claims.get("jti")), issued_at(claims)
            )
            is not None
        )

    def seconds_since_heard(self) -> float:
        """Seconds since the feed last spoke (or since tracking started)."""
        return self._monotonic() - self.last_heard

    # -- the subscriber's side ---------------------------------------------------------

    def mark_started(self) -> None:
        """Start the staleness clock (a subscriber starting up)."""
        self.started_at = self.last_heard = self._monotonic()

    def mark_heard(self, latest_cursor: int | None = None) -> None:
        """Record that the feed spoke (an event, a heartbeat or a page)."""
        self.last_heard = self._monotonic()
        self.connected_once = True
        if latest_cursor is not None and latest_cursor > self.latest_cursor:
            self.latest_cursor = latest_cursor

    def _bucket(self, expires_at: float) -> tuple[int, list[str], list[str], list[str]]:
        b = math.ceil(expires_at / self._bucket_seconds)
        entry = self._buckets.get(b)
        if entry is None:
            entry = (b, [], [], [])
            self._buckets[b] = entry
            heapq.heappush(self._bucket_heap, b)
        return entry

    def apply(self, event: RevocationEvent) -> bool:
        """Add an event (idempotent); returns whether it is live and was kept."""
        if event.cursor > self.cursor:
            self.cursor = event.cursor
        if event.cursor > self.latest_cursor:
            self.latest_cursor = event.cursor
        if event.expires_at <= self._clock():
            return False
        bucket, subs, sids, jtis = self._bucket(event.expires_at)
        value = event.value
        if event.kind in ISSUED_BEFORE:
            nb = self._sub_nb.get(value)
            if nb is None or event.not_before > nb:
                self._sub_nb[value] = event.not_before
            old = self._sub_bucket.get(value)
            if old is None or bucket > old:
                self._sub_bucket[value] = bucket
                subs.append(value)
        else:
            index, values = (self._sid, sids) if event.kind == "sid" else (self._jti, jtis)
            old = index.get(value)
            if old is None or bucket > old:
                index[value] = bucket
                values.append(value)
        for listener in self.listeners:
            listener(event)
        return True

    def prune(self) -> int:
        """Drop the events whose expiry has passed; returns how many."""
        limit = self._clock() / self._bucket_seconds
        dropped = 0
        heap = self._bucket_heap
        while heap and heap[0] <= limit:
            b = heapq.heappop(heap)
            bucket, subs, sids, jtis = self._buckets.pop(b)
            for value in subs:
                if self._sub_bucket.get(value) == bucket:
                    del self._sub_bucket[value]
                    self._sub_nb.pop(value, None)
                    dropped += 1
            for index, values in ((self._sid, sids), (self._jti, jtis)):
                for value in values:
                    if index.get(value) == bucket:
                        del index[value]
                        dropped += 1
        return dropped

    def __len__(self) -> int:
        return len(self._sub_nb) + len(self._sid) + len(self._jti)

    def counts(self) -> dict[str, int]:
        """Live entries per kind."""
        return {"sub": len(self._sub_nb), "sid": len(self._sid), "jti": len(self._jti)}

    def lag(self) -> dict[str, Any]:
        """How far behind the feed this state is."""
        return {
            "seconds_since_heard": round(self.seconds_since_heard(), 3),
            "cursor": self.cursor,
            "latest_cursor": self.latest_cursor,
            "behind": max(0, self.latest_cursor - self.cursor),
        }
