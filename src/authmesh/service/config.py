"""What a service needs to know to trust the auth server: :class:`ServiceConfig`."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from authmesh.errors import ConfigError
from authmesh.jose.keys import SUPPORTED_ALGORITHMS

__all__ = ["ServiceConfig", "is_loopback_host"]

_DURATIONS = (
    "leeway",
    "max_feed_staleness",
    "jwks_min_refetch_interval",
    "jwks_default_ttl",
    "jwks_max_ttl",
    "http_timeout",
    "feed_backoff_initial",
    "feed_backoff_max",
)


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8 or ``::1``)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _seconds(name: str, value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    raise ConfigError(f"{name} must be a timedelta or a number of seconds, not {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceConfig:
    """How a service verifies access tokens from one issuer.

    Durations accept a :class:`~datetime.timedelta` or a number of seconds.

    Args:
        issuer: the auth server's issuer URL; discovery is read from
            ``{issuer}/.well-known/openid-configuration`` (RFC 8414 §3).
        audience: this service's audience name(s): a token must name one (RFC 9068 §4).
        client_id: this service's client at the auth server: the revocation
            feed and client_credentials tokens need it (RFC 6749 §2.3.1).
        client_secret: its secret; never shown by ``repr``.
        leeway: clock skew tolerated on ``exp``/``nbf``/``iat`` (RFC 7519 §4.1.4).
        max_feed_staleness: past this long without a word from the revocation
            feed, tokens are refused (fail closed) unless ``fail_open``.
        fail_open: accept tokens even when the feed is stale (an explicit choice).
        jwks_min_refetch_interval: at most one JWKS fetch per this interval,
            whatever the cause (an unknown ``kid``, an expired cache, a failure).
        jwks_default_ttl: JWKS cache lifetime when the response has no ``max-age``.
        jwks_max_ttl: upper bound on a JWKS ``Cache-Control: max-age``.
        verified_cache_size: how many verified tokens to remember (0 disables).
        ca_bundle: a PEM file of CAs to trust for the auth server instead of the system's.
        allow_insecure_http: allow an ``http://`` issuer that is not loopback.
        http_timeout: connect/read timeout for calls to the auth server.
        realm: the ``realm`` of ``WWW-Authenticate`` challenges (RFC 6750 §3);
            defaults to the (first) audience.
        algorithms: accepted signing algorithms (default: all supported).
        feed_backoff_initial: the feed subscriber's first reconnect comes within
            this delay (uniformly jittered from zero), so a restarted issuer is
            followed again at once without every service arriving together.
        feed_backoff_max: longest delay between later attempts while the issuer is
            unreachable (doubling with jitter up to it); kept short so the feed
            catches up within a second of the issuer being back. An issuer that
            answers with an error is retried after its ``Retry-After``, or on a
            slower schedule.
        otel: trace the SDK's calls to the auth server with OpenTelemetry, forward
            the W3C trace context on service-to-service calls, and trace the
            requests of a Starlette/FastAPI app set up by ``install`` (needs the
            ``otel`` extra; spans go to the global tracer provider).
    """

    issuer: str
    audience: str | frozenset[str]
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    leeway: timedelta = timedelta(seconds=30)
    max_feed_staleness: timedelta = timedelta(seconds=10)
    fail_open: bool = False
    jwks_min_refetch_interval: timedelta = timedelta(seconds=10)
    jwks_default_ttl: timedelta = timedelta(minutes=5)
    jwks_max_ttl: timedelta = timedelta(hours=1)
    verified_cache_size: int = 4096
    ca_bundle: str | None = None
    allow_insecure_http: bool = False
    http_timeout: timedelta = timedelta(seconds=5)
    realm: str | None = None
    algorithms: frozenset[str] | None = None
    feed_backoff_initial: timedelta = timedelta(seconds=0.25)
    feed_backoff_max: timedelta = timedelta(seconds=0.5)
    otel: bool = False

    def __post_init__(self) -> None:
        for name in _DURATIONS:
            value = _seconds(name, getattr(self, name))
            if value <= timedelta(0) and name != "leeway":
                raise ConfigError(f"{name} must be positive")
            object.__setattr__(self, name, value)
        self._check_issuer()
        audience: Any = self.audience
        if isinstance(audience, str):
            if not audience:
                raise ConfigError("audience must not be empty")
        elif isinstance(audience, Iterable):
            auds = frozenset(audience)
            if not auds or not all(isinstance(a, str) and a for a in auds):
                raise ConfigError("audience must be a non-empty string or set of strings")
            object.__setattr__(self, "audience", auds)
        else:
            raise ConfigError("audience must be a string or a set of strings")
        if (self.client_id is None) != (self.client_secret is None):
            raise ConfigError("client_id and client_secret go together: set both or neither")
        if self.client_id is not None and (not self.client_id or ":" in self.client_id):
            # RFC 7617 §2: a user-id in HTTP Basic cannot contain a colon.
            raise ConfigError("client_id must be non-empty and must not contain ':'")
        if not timedelta(0) <= self.leeway <= timedelta(minutes=5):
            raise ConfigError("leeway must be between 0 and 300 seconds")
        if self.jwks_max_ttl < self.jwks_min_refetch_interval:
            raise ConfigError("jwks_max_ttl must not be shorter than jwks_min_refetch_interval")
        if self.feed_backoff_max < self.feed_backoff_initial:
            raise ConfigError("feed_backoff_max must not be shorter than feed_backoff_initial")
        size = self.verified_cache_size
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ConfigError("verified_cache_size must be a non-negative integer")
        if self.algorithms is not None:
            algs = frozenset(self.algorithms)
            if not algs or not algs <= set(SUPPORTED_ALGORITHMS):
                raise ConfigError(
                    f"algorithms must be a non-empty subset of {SUPPORTED_ALGORITHMS}"
                )
            object.__setattr__(self, "algorithms", algs)
        if self.ca_bundle is not None and not os.path.isfile(self.ca_bundle):
            raise ConfigError(f"ca_bundle {self.ca_bundle!r} is not a file")
        if self.otel:
            from authmesh.tracing import require_otel

            require_otel("ServiceConfig(otel=True)")

    def _check_issuer(self) -> None:
        # RFC 8414 §2: an https URL with no query or fragment.
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError(f"issuer must be an absolute https URL, not {self.issuer!r}")
        if parts.query or parts.fragment:
            raise ConfigError("issuer must not have a query or a fragment (RFC 8414 §2)")
        self.check_url(self.issuer, what="issuer")

    def check_url(self, url: str, *, what: str) -> None:
        """Refuse a plain-http URL to a host other than loopback (tokens travel over TLS).

        Raises:
            ConfigError: the URL is not https, unless loopback or ``allow_insecure_http``.
        """
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.hostname:
            return
        if parts.scheme == "http" and parts.hostname:
            if self.allow_insecure_http or is_loopback_host(parts.hostname):
                return
            raise ConfigError(
                f"{what} {url!r} uses plain http to a host that is not loopback; "
                "use https or set allow_insecure_http=True"
            )
        raise ConfigError(f"{what} must be an absolute https URL, not {url!r}")

    @property
    def audiences(self) -> frozenset[str]:
        """The accepted audiences as a set."""
        aud = self.audience
        return frozenset({aud}) if isinstance(aud, str) else aud

    @property
    def effective_realm(self) -> str:
        """The realm used in challenges: ``realm`` or the first audience."""
        if self.realm:
            return self.realm
        aud = self.audience
        return aud if isinstance(aud, str) else sorted(aud)[0]

    @property
    def discovery_url(self) -> str:
        """``{issuer}/.well-known/openid-configuration`` (OIDC Discovery §4)."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def has_client_credentials(self) -> bool:
        """Whether a client id and secret are configured."""
        return self.client_id is not None and self.client_secret is not None

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        prefix: str = "AUTHMESH_",
        **overrides: Any,
    ) -> ServiceConfig:
        """Build from ``AUTHMESH_*`` variables (``ISSUER``, ``AUDIENCE`` comma-separated,
        ``CLIENT_ID``, ``CLIENT_SECRET``, durations in seconds, booleans as ``true``/``false``).

        Raises:
            ConfigError: a variable is missing or not valid.
        """
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {}
        for f in cls.__dataclass_fields__.values():
            raw = env.get(prefix + f.name.upper())
            if raw is None or f.name in overrides:
                continue
            if f.name in _DURATIONS:
                try:
                    kwargs[f.name] = float(raw)
                except ValueError:
                    raise ConfigError(f"{prefix}{f.name.upper()} must be seconds") from None
            elif f.name in ("fail_open", "allow_insecure_http", "otel"):
                if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ConfigError(f"{prefix}{f.name.upper()} must be true or false")
                kwargs[f.name] = raw.lower() in ("1", "true", "yes")
            elif f.name == "verified_cache_size":
                try:
                    kwargs[f.name] = int(raw)
                except ValueError:
                    raise ConfigError(f"{prefix}{f.name.upper()} must be an integer") from None
            elif f.name in ("audience", "algorithms"):
                items = frozenset(a.strip() for a in raw.split(",") if a.strip())
                single = f.name == "audience" and len(items) == 1
                kwargs[f.name] = next(iter(items)) if single else items
            else:
                kwargs[f.name] = raw
        kwargs.update(overrides)
        for required in ("issuer", "audience"):
            if required not in kwargs:
                raise ConfigError(f"{prefix}{required.upper()} is not set")
        return cls(**kwargs)
