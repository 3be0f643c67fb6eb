"""Prometheus metrics of one auth-server app (its own registry, so apps don't collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ServerMetrics"]


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
