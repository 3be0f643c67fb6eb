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
    "ssf_event_retention",
)
#: How a service learns revocations: the native feed (SSE, the default and the
#: fastest) or an OpenID Shared Signals stream, polled or pushed (docs/ssf.md).
TRANSPORTS = frozenset({"feed", "ssf-poll", "ssf-push"})


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
        revocation_transport: ``"feed"`` (the native revocation feed, default),
            ``"ssf-poll"`` or ``"ssf-push"``: follow the issuer as an OpenID Shared
            Signals receiver over poll (RFC 8936) or push (RFC 8935) delivery, with
            the same staleness bound and fail-closed behaviour (docs/ssf.md).
        ssf_receiver_name: names this instance's stream at the issuer, so a
            restart finds it again (and catches up); every replica of a service
            needs a name of its own, since each holds the whole revocation state.
            Default: the audiences.
        ssf_event_retention: how long a revocation learnt over Shared Signals is
            held; at least the issuer's access-token lifetime plus leeway.
        ssf_push_url: with ``"ssf-push"``, the URL at which the auth server reaches
            this instance's push endpoint (a service cannot guess its public
            address); https unless loopback or ``allow_insecure_http``.
        ssf_push_path: the path the framework adapters serve the push endpoint
            on; default: the path of ``ssf_push_url`` (set it when a proxy
            rewrites paths).
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
    revocation_transport: str = "feed"
    ssf_receiver_name: str | None = None
    ssf_event_retention: timedelta = timedelta(hours=1)
    ssf_push_url: str | None = None
    ssf_push_path: str | None = None
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
        if self.revocation_transport not in TRANSPORTS:
            raise ConfigError(f"revocation_transport must be one of {sorted(TRANSPORTS)}")
        self._check_push()
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

    def _check_push(self) -> None:
        push = self.revocation_transport == "ssf-push"
        if not push:
            if self.ssf_push_url is not None or self.ssf_push_path is not None:
                raise ConfigError(
                    "ssf_push_url and ssf_push_path need revocation_transport='ssf-push'"
                )
            return
        url = self.ssf_push_url
        if not url:
            raise ConfigError(
                "revocation_transport='ssf-push' needs ssf_push_url: the URL at which "
                "the auth server reaches this service's push endpoint"
            )
        parts = urlsplit(url)
        if parts.fragment or not parts.path.startswith("/"):
            raise ConfigError(f"ssf_push_url must be an absolute URL with a path, not {url!r}")
        self.check_url(url, what="ssf_push_url")
        path = self.ssf_push_path if self.ssf_push_path is not None else parts.path
        if not path.startswith("/") or "?" in path or "#" in path:
            raise ConfigError(f"ssf_push_path must be a path starting with '/', not {path!r}")
        object.__setattr__(self, "ssf_push_path", path)

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
