"""What the operations endpoints of a service answer: liveness, readiness and metrics.

The adapters mount them in one line (``mount_operations(app, auth)`` in
:mod:`authmesh.service.starlette`, :mod:`~authmesh.service.fastapi`,
:mod:`~authmesh.service.strawberry` and :mod:`~authmesh.service.flask`); this
module decides the answers, with no framework:

* ``/healthz``: 200 while the process runs (liveness: restart it if this fails);
* ``/readyz``: 200 when the service can judge tokens, 503 otherwise, naming
  what is not ready: the JWKS not loaded yet, or the revocation feed stale
  while the service fails closed (a service with ``fail_open`` stays ready
  on a stale feed: it accepts tokens, which is what it was told to do);
* ``/metrics``: the SDK's counters (:func:`~authmesh.service.metrics.register_metrics`)
  in the Prometheus text format, from a registry of this service's own.

The bodies carry no error text and no URL: probes are often reachable by anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authmesh.errors import ConfigError
from authmesh.service.metrics import register_metrics
from authmesh.service.service_auth import ServiceAuth

__all__ = [
    "HEALTHZ",
    "METRICS",
    "READYZ",
    "MetricsPage",
    "Probe",
    "liveness",
    "operation_paths",
    "readiness",
]

HEALTHZ = "/healthz"
READYZ = "/readyz"
METRICS = "/metrics"


@dataclass(frozen=True, slots=True)
class Probe:
    """A probe's answer: HTTP status and JSON body."""

    status: int
    body: dict[str, Any]


def liveness() -> Probe:
    """The process is up and serving."""
    return Probe(200, {"status": "alive"})


def readiness(auth: ServiceAuth) -> Probe:
    """200 when keys are loaded and revocations are known (or knowingly ignored), else 503."""
    checks: dict[str, str] = {}
    not_ready: list[str] = []
    if auth.keys.loaded:
        checks["jwks"] = "loaded"
    else:
        checks["jwks"] = "not loaded"
        not_ready.append("jwks")
    state = auth.revocations
    if state is None:
        checks["revocation_feed"] = "disabled (fail_open, no client credentials)"
    elif auth.verifier.is_stale():
        silent = f"silent for {state.seconds_since_heard():.1f} s"
        if auth.config.fail_open:
            checks["revocation_feed"] = f"stale, {silent} (tokens accepted: fail_open)"
        else:
            checks["revocation_feed"] = f"stale, {silent}"
            not_ready.append("revocation_feed")
    else:
        checks["revocation_feed"] = "fresh"
    if not_ready:
        return Probe(503, {"status": "not_ready", "not_ready": not_ready, "checks": checks})
    return Probe(200, {"status": "ready", "checks": checks})


class MetricsPage:
    """The Prometheus text of one service's counters (needs ``prometheus_client``).

    Raises:
        ConfigError: ``prometheus_client`` is not installed.
    """

    def __init__(self, auth: ServiceAuth) -> None:
        try:
            from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
        except ImportError:
            raise ConfigError(
                "the /metrics endpoint needs prometheus-client: pip install prometheus-client, "
                "or mount the operations with metrics=False"
            ) from None
        self.content_type: str = CONTENT_TYPE_LATEST
        self.registry = CollectorRegistry()
        register_metrics(auth, self.registry)

    def render(self) -> bytes:
        """The current values, in the text exposition format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def operation_paths(prefix: str = "") -> tuple[str, str, str]:
    """The liveness, readiness and metrics paths under ``prefix`` (``""`` or ``/ops``)."""
    prefix = prefix.rstrip("/")
    if prefix and not prefix.startswith("/"):
        raise ConfigError(f"the operations prefix must start with '/', not {prefix!r}")
    return prefix + HEALTHZ, prefix + READYZ, prefix + METRICS
