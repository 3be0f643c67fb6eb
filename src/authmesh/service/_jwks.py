"""The issuer's public keys, cached: a :class:`~authmesh.jose.KeyResolver` over its JWKS.

* The JWKS URL comes from discovery (RFC 8414 ``jwks_uri``).
* The cache lives for the response's ``Cache-Control: max-age`` (RFC 9111
  §5.2.2.1), bounded by ``jwks_min_refetch_interval`` and ``jwks_max_ttl``.
* A token naming an unknown ``kid`` triggers a refetch (a key rotation publishes
  the new key before it signs), but the whole cache makes at
  most one fetch per ``jwks_min_refetch_interval``, whatever the cause: a flood
  of forged ``kid`` values cannot hammer the auth server.
* A failed fetch keeps the cached keys: verification goes on while the auth
  server is down.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from authmesh.errors import InvalidKey
from authmesh.jose.keys import Key
from authmesh.jose.keyset import KeySet
from authmesh.jose.policy import Clock
from authmesh.service._discovery import Discovery
from authmesh.service._http import Fetched, HttpClients, afetch, fetch, parse_json
from authmesh.service.config import ServiceConfig
from authmesh.service.errors import DiscoveryError
from authmesh.service.stats import ServiceStats

__all__ = ["JWKSCache", "cache_lifetime"]

log = logging.getLogger(__name__)

_ACCEPT = {"Accept": "application/jwk-set+json, application/json"}


def cache_lifetime(
    headers: httpx.Headers, *, default: float, floor: float, ceiling: float
) -> float:
    """Seconds to keep a JWKS: ``max-age`` (RFC 9111 §5.2.2.1), else ``default``, bounded.

    ``no-store``/``no-cache`` mean "as short as allowed", i.e. ``floor``.
    """
    ttl = default
    for directive in headers.get("cache-control", "").lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name in ("no-store", "no-cache"):
            ttl = 0.0
            break
        if name == "max-age":
            try:
                ttl = float(int(value.strip().strip('"')))
            except ValueError:
                continue
    return min(max(ttl, floor), ceiling)


class JWKSCache:
    """The issuer's keys by ``kid``, refreshed by ``max-age`` and on unknown ``kid``.

    :meth:`get` never does I/O (it is the :class:`~authmesh.jose.KeyResolver`);
    the ``refresh*`` methods fetch, synchronously or asynchronously.
    """

    def __init__(
        self,
        config: ServiceConfig,
        discovery: Discovery,
        http: HttpClients,
        *,
        stats: ServiceStats | None = None,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self._config = config
        self._discovery = discovery
        self._http = http
        self._stats = stats or ServiceStats()
        self._monotonic = monotonic
        self._min_interval = config.jwks_min_refetch_interval.total_seconds()
        self._default_ttl = config.jwks_default_ttl.total_seconds()
        self._max_ttl = config.jwks_max_ttl.total_seconds()
        self._keys = KeySet()
        self._loaded = False
        self._expires_at = -math.inf
        self._last_attempt = -math.inf
        self._fetched_at: float | None = None
        self._slot_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._alock: asyncio.Lock | None = None
        self._alock_loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[Callable[[frozenset[str]], None]] = []
        self.last_error: str | None = None
        self.generation = 0
        """Incremented whenever a fetch installs a key set."""

    # -- KeyResolver ---------------------------------------------------------------

    def get(self, kid: str | None) -> Key | None:
        """The cached key with this ``kid`` (no I/O)."""
        return self._keys.get(kid)

    # -- state ---------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        """Whether a JWKS was ever fetched successfully."""
        return self._loaded

    @property
    def kids(self) -> frozenset[str]:
        """The ``kid`` of every cached key."""
        return frozenset(key.kid for key in self._keys)

    @property
    def fetch_count(self) -> int:
        """JWKS fetch attempts so far."""
        return self._stats.jwks_fetches

    def on_keys_removed(self, listener: Callable[[frozenset[str]], None]) -> None:
        """Call ``listener`` with the removed ``kid`` values whenever a refresh drops keys."""
        self._listeners.append(listener)

    def refresh_due(self) -> bool:
        """Whether the cache expired and the rate limit allows a fetch."""
        now = self._monotonic()
        return now >= self._expires_at and now - self._last_attempt >= self._min_interval

    def health(self) -> dict[str, Any]:
        """A JSON-able summary for health checks."""
        now = self._monotonic()
        return {
            "loaded": self._loaded,
            "kids": sorted(self.kids),
            "age_seconds": None if self._fetched_at is None else round(now - self._fetched_at, 3),
            "fetches": self._stats.jwks_fetches,
            "failures": self._stats.jwks_fetch_failures,
            "refetches_refused": self._stats.jwks_refetches_refused,
            "last_error": self.last_error,
        }

    def _claim_slot(self, *, force: bool = False) -> bool:
        """Take the one fetch allowed per interval; ``False`` when it is already used."""
        with self._slot_lock:
            now = self._monotonic()
            if not force and now - self._last_attempt < self._min_interval:
                return False
            self._last_attempt = now
            return True

    def _install(self, fetched: Fetched, doc: object) -> None:
        if not isinstance(doc, dict):
            raise InvalidKey("not a JWKS: expected a JSON object")
        keys = KeySet.from_jwks(doc, skip_unusable=True)
        ttl = cache_lifetime(
            fetched.headers,
            default=self._default_ttl,
            floor=self._min_interval,
            ceiling=self._max_ttl,
        )
        now = self._monotonic()
        self._fetched_at = now
        self._expires_at = now + ttl
        self.last_error = None
        if not len(keys) and self._loaded:
            # An empty set is more likely a glitch than a revocation of every key.
            log.warning("the issuer's JWKS has no usable key; keeping the cached keys")
            return
        removed = self.kids - {key.kid for key in keys}
        self._keys = keys
        self._loaded = True
        self.generation += 1
        if removed:
            log.info("JWKS refresh removed keys %s", sorted(removed))
            for listener in self._listeners:
                listener(frozenset(removed))

    def _failed(self, exc: Exception) -> bool:
        self._stats.jwks_fetch_failures += 1
        self.last_error = str(exc)[:300]
        log.warning("JWKS fetch failed (serving %d cached keys): %s", len(self._keys), exc)
        return False

    # -- synchronous ---------------------------------------------------------------

    def _fetch(self) -> bool:
        self._stats.jwks_fetches += 1
        try:
            meta = self._discovery.get()
            fetched = fetch(
                self._http.sync_client(),
                meta.jwks_uri,
                what="jwks",
                error=DiscoveryError,
                headers=_ACCEPT,
            )
            self._install(fetched, parse_json(fetched, what="jwks", error=DiscoveryError))
            return True
        except (DiscoveryError, InvalidKey) as exc:
            return self._failed(exc)

    def refresh(self, *, force: bool = False) -> bool:
        """Fetch the JWKS now if the rate limit allows (``force`` ignores it).

        Returns:
            whether a fetch happened and succeeded.
        """
        with self._sync_lock:
            return self._claim_slot(force=force) and self._fetch()

    def refresh_if_due(self) -> None:
        """Refresh when the cache expired (rate-limited; failures keep the cached keys)."""
        if self.refresh_due():
            self.refresh()

    def refresh_unknown_kid(self, seen_generation: int) -> bool:
        """Refetch for a token whose ``kid`` was unknown in key set ``seen_generation``.

        At most one fetch per interval; a caller that waited for a concurrent
        fetch just retries with its result.

        Returns:
            whether the key set changed since ``seen_generation`` (worth a retry).
        """
        if self.generation != seen_generation:
            return True
        with self._sync_lock:
            if self.generation != seen_generation:
                return True
            if not self._claim_slot():
                self._stats.jwks_refetches_refused += 1
                return False
            return self._fetch()

    # -- asynchronous --------------------------------------------------------------

    def _async_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._alock is None or self._alock_loop is not loop:
            self._alock = asyncio.Lock()
            self._alock_loop = loop
        return self._alock

    async def _afetch(self) -> bool:
        self._stats.jwks_fetches += 1
        try:
            meta = await self._discovery.aget()
            fetched = await afetch(
                self._http.async_client(),
                meta.jwks_uri,
                what="jwks",
                error=DiscoveryError,
                headers=_ACCEPT,
            )
            self._install(fetched, parse_json(fetched, what="jwks", error=DiscoveryError))
            return True
        except (DiscoveryError, InvalidKey) as exc:
            return self._failed(exc)

    async def arefresh(self, *, force: bool = False) -> bool:
        """Async :meth:`refresh`."""
        async with self._async_lock():
            return self._claim_slot(force=force) and await self._afetch()

    async def arefresh_if_due(self) -> None:
        """Async :meth:`refresh_if_due`."""
        if self.refresh_due():
            await self.arefresh()

    async def arefresh_unknown_kid(self, seen_generation: int) -> bool:
        """Async :meth:`refresh_unknown_kid`; concurrent callers share one fetch."""
        if self.generation != seen_generation:
            return True
        async with self._async_lock():
            if self.generation != seen_generation:
                return True
            if not self._claim_slot():
                self._stats.jwks_refetches_refused += 1
                return False
            return await self._afetch()
