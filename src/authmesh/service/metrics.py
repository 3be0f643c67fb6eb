"""Prometheus metrics for a service's verifier and feed, when ``prometheus_client`` is installed.

A collector reads :class:`ServiceStats` at scrape time, so the request path
pays for plain integer increments only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from authmesh.service.service_auth import ServiceAuth

__all__ = ["register_metrics"]


def register_metrics(
    auth: ServiceAuth, registry: Any = None, *, prefix: str = "authmesh_service"
) -> bool:
    """Expose ``auth``'s counters to Prometheus.

    Args:
        auth: the service's :class:`ServiceAuth`.
        registry: a ``CollectorRegistry`` (default: the global one).
        prefix: metric name prefix.

    Returns:
        ``False`` when ``prometheus_client`` is not installed (nothing done).
    """
    try:
        from prometheus_client import REGISTRY
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    except ImportError:
        return False

    class Collector:
        def collect(self) -> Iterator[Any]:
            stats = auth.stats

            def counter(name: str, doc: str, value: float) -> Any:
                return CounterMetricFamily(f"{prefix}_{name}", doc, value=value)

            yield counter("tokens_verified", "Tokens verified in full.", stats.verified)
            yield counter(
                "token_cache_hits",
                "Requests answered from the verified-token cache.",
                stats.cache_hits,
            )
            rejected = CounterMetricFamily(
                f"{prefix}_tokens_rejected", "Rejected tokens by reason.", labels=["reason"]
            )
            for reason, count in sorted(stats.rejected.items()):
                rejected.add_metric([reason], count)
            yield rejected
            yield counter(
                "fail_open_accepts",
                "Tokens accepted with a stale feed (fail_open).",
                stats.fail_open_accepts,
            )
            yield counter("jwks_fetches", "JWKS fetch attempts.", stats.jwks_fetches)
            yield counter("jwks_fetch_failures", "Failed JWKS fetches.", stats.jwks_fetch_failures)
            yield counter(
                "jwks_refetches_refused",
                "Unknown-kid refetches refused by the rate limit.",
                stats.jwks_refetches_refused,
            )
            yield counter("feed_events", "Revocation events received.", stats.feed_events)
            yield counter("feed_heartbeats", "Feed heartbeats received.", stats.feed_heartbeats)
            yield counter("feed_failures", "Feed disconnections and failures.", stats.feed_failures)
            state = auth.revocations
            if state is not None:
                yield GaugeMetricFamily(
                    f"{prefix}_feed_seconds_since_heard",
                    "Seconds since the revocation feed last spoke.",
                    value=state.seconds_since_heard(),
                )
                yield GaugeMetricFamily(
                    f"{prefix}_feed_stale",
                    "1 when the feed is past its staleness bound.",
                    value=float(auth.verifier.is_stale()),
                )
                yield GaugeMetricFamily(
                    f"{prefix}_feed_cursor", "Cursor of the last event applied.", value=state.cursor
                )
                live = GaugeMetricFamily(
                    f"{prefix}_revocations_live", "Live revocation entries.", labels=["kind"]
                )
                for kind, count in state.counts().items():
                    live.add_metric([kind], count)
                yield live

    (REGISTRY if registry is None else registry).register(Collector())
    return True
