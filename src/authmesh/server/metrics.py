"""Prometheus metrics of one auth-server app (its own registry, so apps don't collide).

Counters are updated on the request path; the database pool and the feed
followers' lag are read from their sources when ``/metrics`` is scraped
(:meth:`ServerMetrics.collect_state`), so they cost nothing between scrapes.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["FeedFollowers", "ServerMetrics"]


class FeedFollowers:
    """The open revocation-feed streams of this process and how far each has been sent.

    A follower's position is the cursor it is caught up to: its last event, or
    the ``latest_cursor`` of its last heartbeat.
    """

    def __init__(self) -> None:
        self._positions: dict[int, int] = {}
        self._next_id = 0

    def open(self, cursor: int) -> int:
        """Count a new follower starting after ``cursor``; its handle."""
        self._next_id += 1
        self._positions[self._next_id] = cursor
        return self._next_id

    def advance(self, handle: int, cursor: int) -> None:
        """The follower was sent everything up to ``cursor``."""
        if handle in self._positions:
            self._positions[handle] = max(self._positions[handle], cursor)

    def close(self, handle: int) -> None:
        """The follower's stream ended."""
        self._positions.pop(handle, None)

    def __len__(self) -> int:
        return len(self._positions)

    def max_lag(self, latest: int) -> int:
        """Events the furthest-behind follower has yet to be sent (0 without followers)."""
        return max((max(latest - p, 0) for p in self._positions.values()), default=0)


class ServerMetrics:
    """Counters and gauges exposed on ``GET /metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.token_requests = Counter(
            "authmesh_token_requests_total",
            "Token endpoint requests by grant type and outcome.",
            ["grant_type", "outcome"],
            registry=self.registry,
        )
        self.token_latency = Histogram(
            "authmesh_token_request_seconds",
            "Token endpoint latency by grant type.",
            ["grant_type"],
            registry=self.registry,
        )
        self.revocations = Counter(
            "authmesh_revocation_events_total",
            "Revocation events written by this process.",
            registry=self.registry,
        )
        self.feed_streams = Gauge(
            "authmesh_feed_streams",
            "Open revocation-feed streams on this process.",
            registry=self.registry,
        )
        self.feed_latest_cursor = Gauge(
            "authmesh_feed_latest_cursor",
            "Newest revocation cursor known to this process.",
            registry=self.registry,
        )
        self.followers = FeedFollowers()
        self.feed_follower_lag = Gauge(
            "authmesh_feed_follower_lag_max",
            "Revocation events the furthest-behind feed stream of this process has yet to send.",
            registry=self.registry,
        )
        self.db_pool_size = Gauge(
            "authmesh_db_pool_size",
            "Connections the database pool keeps (its base size).",
            registry=self.registry,
        )
        self.db_pool_checked_out = Gauge(
            "authmesh_db_pool_checked_out",
            "Database connections in use by requests.",
            registry=self.registry,
        )
        self.db_pool_overflow = Gauge(
            "authmesh_db_pool_overflow",
            "Database connections open beyond the pool's base size.",
            registry=self.registry,
        )

    def collect_state(self, *, latest_cursor: int, pool: Any) -> None:
        """Read the feed's and the database pool's state into the gauges (at scrape time).

        Args:
            latest_cursor: the newest revocation cursor this process knows of.
            pool: the SQLAlchemy engine's pool; pools without a size (``NullPool``,
                ``StaticPool``) leave the pool gauges alone.
        """
        self.feed_latest_cursor.set(latest_cursor)
        self.feed_follower_lag.set(self.followers.max_lag(latest_cursor))
        if all(hasattr(pool, name) for name in ("size", "checkedout", "overflow")):
            self.db_pool_size.set(pool.size())
            self.db_pool_checked_out.set(pool.checkedout())
            # QueuePool counts overflow from -size up: negative while the pool is not full.
            self.db_pool_overflow.set(max(pool.overflow(), 0))
