"""The auth server's metadata (RFC 8414, OIDC Discovery 1.0), fetched once and cached."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from authmesh.errors import ConfigError
from authmesh.jose.policy import Clock
from authmesh.service._http import HttpClients, afetch, fetch, parse_json
from authmesh.service.config import ServiceConfig
from authmesh.service.errors import DiscoveryError

__all__ = ["Discovery", "ProviderMetadata"]

_ENDPOINTS = (
    "jwks_uri",
    "token_endpoint",
    "revocation_feed_endpoint",
    "revocation_feed_stream_endpoint",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderMetadata:
    """The members of the discovery document the SDK uses."""

    issuer: str
    jwks_uri: str
    token_endpoint: str | None = None
    revocation_feed_endpoint: str | None = None
    revocation_feed_stream_endpoint: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, doc: object, config: ServiceConfig) -> ProviderMetadata:
        """Validate a discovery document against the configured issuer.

        Raises:
            DiscoveryError: not an object, ``issuer`` differs from the configured
                one (RFC 8414 §3.3), no ``jwks_uri``, or an endpoint is not https.
        """
        if not isinstance(doc, dict):
            raise DiscoveryError("discovery: the document is not a JSON object")
        if doc.get("issuer") != config.issuer:
            # RFC 8414 §3.3: MUST be identical, or the metadata may be an impostor's.
            raise DiscoveryError(
                f"discovery: issuer {str(doc.get('issuer'))[:200]!r} is not the configured "
                f"issuer {config.issuer!r}"
            )
        values: dict[str, str | None] = {}
        for name in _ENDPOINTS:
            url = doc.get(name)
            if url is None:
                values[name] = None
                continue
            if not isinstance(url, str):
                raise DiscoveryError(f"discovery: {name} is not a string")
            try:
                config.check_url(url, what=f"discovery {name}")
            except ConfigError as exc:
                raise DiscoveryError(str(exc)) from None
            values[name] = url
        jwks_uri = values.pop("jwks_uri")
        if not jwks_uri:
            raise DiscoveryError("discovery: the document has no jwks_uri")
        return cls(issuer=config.issuer, jwks_uri=jwks_uri, raw=MappingProxyType(doc), **values)


class Discovery:
    """Fetches ``{issuer}/.well-known/openid-configuration`` and keeps it for ``ttl`` seconds.

    A failed refresh keeps serving the previous document.
    """

    def __init__(
        self,
        config: ServiceConfig,
        http: HttpClients,
        *,
        ttl: float = 3600.0,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self._config = config
        self._http = http
        self._ttl = ttl
        self._monotonic = monotonic
        self._metadata: ProviderMetadata | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()
        self.fetches = 0

    @property
    def cached(self) -> ProviderMetadata | None:
        """The last good document, if any."""
        return self._metadata

    def _fresh(self) -> ProviderMetadata | None:
        meta = self._metadata
        if meta is not None and self._monotonic() - self._fetched_at < self._ttl:
            return meta
        return None

    def _store(self, doc: object) -> ProviderMetadata:
        meta = ProviderMetadata.from_json(doc, self._config)
        self._metadata = meta
        self._fetched_at = self._monotonic()
        return meta

    def get(self) -> ProviderMetadata:
        """The metadata, fetched synchronously when absent or old.

        Raises:
            DiscoveryError: no document yet and the fetch failed.
        """
        meta = self._fresh()
        if meta is not None:
            return meta
        with self._lock:
            meta = self._fresh()
            if meta is not None:
                return meta
            self.fetches += 1
            try:
                fetched = fetch(
                    self._http.sync_client(),
                    self._config.discovery_url,
                    what="discovery",
                    error=DiscoveryError,
                    headers={"Accept": "application/json"},
                )
                return self._store(parse_json(fetched, what="discovery", error=DiscoveryError))
            except DiscoveryError:
                if self._metadata is not None:
                    return self._metadata
                raise

    async def aget(self) -> ProviderMetadata:
        """Async :meth:`get`."""
        meta = self._fresh()
        if meta is not None:
            return meta
        self.fetches += 1
        try:
            fetched = await afetch(
                self._http.async_client(),
                self._config.discovery_url,
                what="discovery",
                error=DiscoveryError,
                headers={"Accept": "application/json"},
            )
            return self._store(parse_json(fetched, what="discovery", error=DiscoveryError))
        except DiscoveryError:
            if self._metadata is not None:
                return self._metadata
            raise
