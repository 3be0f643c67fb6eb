"""Checks of the configuration alone: the issuer URL and TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
from urllib.parse import urlsplit

from cryptography import x509

from authmesh.errors import ConfigError
from authmesh.server.config import ServerSettings, check_issuer_for_host
from authmesh.server.doctor.findings import Finding, fail, ok, warn

__all__ = ["check_issuer", "check_tls"]

ISSUER, TLS = "issuer URL", "TLS"
#: A certificate this close to its end is worth a warning.
_RENEW_DAYS = 14


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_issuer(settings: ServerSettings) -> Finding:
    """The ``iss`` of every token: given explicitly, or safely derived."""
    try:
        check_issuer_for_host(settings)
    except ConfigError as exc:
        return fail(ISSUER, str(exc))
    url = settings.issuer_url
    if settings.issuer is not None:
        return ok(ISSUER, url)
    if _is_loopback(settings.host):
        return ok(ISSUER, f"{url} (from host and port; only clients on this machine reach it)")
    return warn(
        ISSUER,
        f"{url} is derived from --host and --port: behind a proxy or load balancer, "
        "set --issuer to the URL clients use",
    )


def check_tls(settings: ServerSettings, *, now: dt.datetime | None = None) -> Finding:
    """HTTPS: served here (a valid certificate), terminated in front, or plain HTTP."""
    if settings.tls_cert is None or settings.tls_key is None:
        scheme = urlsplit(settings.issuer_url).scheme
        host = urlsplit(settings.issuer_url).hostname or ""
        if scheme == "https":
            return ok(TLS, "terminated in front of the server (the issuer is https)")
        if _is_loopback(host):
            return warn(TLS, "plain HTTP on this machine only: fine for development")
        return fail(
            TLS,
            f"plain HTTP at {settings.issuer_url}: passwords and tokens would cross the "
            "network in clear; set --tls-cert/--tls-key, or terminate TLS in a proxy and "
            "give an https --issuer",
        )
    try:
        cert = x509.load_pem_x509_certificate(settings.tls_cert.read_bytes())
        settings.tls_key.read_bytes()
    except (OSError, ValueError) as exc:
        return fail(TLS, f"cannot read the certificate or key: {exc}")
    now = now or dt.datetime.now(dt.UTC)
    ends = cert.not_valid_after_utc
    if ends <= now:
        return fail(TLS, f"the certificate {settings.tls_cert} expired on {ends:%Y-%m-%d}")
    starts = cert.not_valid_before_utc
    if starts > now:
        return fail(TLS, f"the certificate {settings.tls_cert} is valid from {starts:%Y-%m-%d}")
    if ends - now < dt.timedelta(days=_RENEW_DAYS):
        return warn(TLS, f"the certificate {settings.tls_cert} ends on {ends:%Y-%m-%d}: renew it")
    return ok(TLS, f"served here; the certificate is valid until {ends:%Y-%m-%d}")
