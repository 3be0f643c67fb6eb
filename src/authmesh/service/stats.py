"""Plain counters kept by the SDK; read by health checks and the Prometheus collector.

Integer attributes, not metric objects: incrementing one costs tens of
nanoseconds on the request path, and :mod:`authmesh.service.metrics` reads them
only when scraped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["ServiceStats"]


@dataclass(slots=True)
class ServiceStats:
    """Counters of one service's verifier, JWKS cache and revocation feed."""

    verified: int = 0
    """Tokens verified in full (signature and claims)."""
    cache_hits: int = 0
    """Requests answered from the cache of verified tokens."""
    rejected: Counter[str] = field(default_factory=Counter)
    """Rejections by reason code."""
    fail_open_accepts: int = 0
    """Tokens accepted while the feed was stale because ``fail_open`` is set."""
    jwks_fetches: int = 0
    jwks_fetch_failures: int = 0
    jwks_refetches_refused: int = 0
    """Unknown-``kid`` refetches refused by the rate limit."""
    feed_events: int = 0
    feed_heartbeats: int = 0
    feed_connects: int = 0
    feed_failures: int = 0
    feed_pages: int = 0
