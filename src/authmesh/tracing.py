"""OpenTelemetry glue shared by the server and the SDK (the ``otel`` extra).

Nothing here imports :mod:`opentelemetry` at module level, and nothing imports
this module's helpers unless tracing was switched on: without the extra
installed, authmesh never touches OpenTelemetry. Spans go to the global tracer
provider, which the program owns (``authmesh serve --otel`` sets one up with
:func:`configure_tracer_provider`; a service sets up its own, or runs under
``opentelemetry-instrument``).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import MutableMapping
from typing import Any

from authmesh.errors import ConfigError

__all__ = [
    "OTEL_INSTALL_HINT",
    "configure_tracer_provider",
    "inject_trace_context",
    "instrument_asgi_app",
    "instrument_httpx_client",
    "require_otel",
]

OTEL_INSTALL_HINT = "pip install 'authmesh[otel]'"
#: What the otel extra brings, as importable modules.
_MODULES = (
    "opentelemetry.sdk.trace",
    "opentelemetry.instrumentation.asgi",
    "opentelemetry.instrumentation.httpx",
)
#: OTLP exporters, preferred in this order when installed.
_OTLP_EXPORTERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def require_otel(what: str, modules: tuple[str, ...] = ()) -> None:
    """Check that the ``otel`` extra is installed.

    Raises:
        ConfigError: it is not; the message names ``what`` asked for it and how to install it.
    """
    missing = [m for m in (*_MODULES, *modules) if not _installed(m)]
    if missing:
        raise ConfigError(
            f"{what} needs OpenTelemetry, which is not installed "
            f"(no module {missing[0]}): {OTEL_INSTALL_HINT}"
        )


def inject_trace_context(headers: MutableMapping[str, str]) -> None:
    """Add the current span's W3C ``traceparent`` (and ``tracestate``) to ``headers``."""
    from opentelemetry import propagate

    propagate.inject(headers)


def instrument_httpx_client(client: Any) -> None:
    """Trace every request of one ``httpx.Client`` or ``httpx.AsyncClient``.

    Per client, not httpx as a whole: the program's other clients stay as they are.
    """
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client)


def instrument_asgi_app(app: Any, *, excluded_urls: str = "") -> None:
    """Trace the requests of a Starlette-based app (FastAPI included) as server spans.

    The middleware goes outermost, so the span covers authentication too, and a
    ``traceparent`` from the caller makes it a child of the caller's span.
    """
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    app.add_middleware(
        OpenTelemetryMiddleware,
        excluded_urls=excluded_urls or None,
        # One span per request, not three (receive and send are ASGI plumbing).
        exclude_spans=["receive", "send"],
    )


def _span_exporter() -> Any:
    """The exporter named by ``OTEL_TRACES_EXPORTER``: OTLP if installed, else the console."""
    choice = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() or None
    if choice == "none":
        return None
    if choice in (None, "otlp"):
        for module in _OTLP_EXPORTERS:
            if _installed(module):
                return importlib.import_module(module).OTLPSpanExporter()
        if choice == "otlp":
            raise ConfigError(
                "OTEL_TRACES_EXPORTER=otlp needs an OTLP exporter: "
                "pip install opentelemetry-exporter-otlp"
            )
    elif choice != "console":
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER={choice!r} is not supported here: use otlp, console or none"
        )
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    return ConsoleSpanExporter()


def configure_tracer_provider(default_service_name: str) -> Any:
    """Install a global SDK tracer provider exporting as the ``OTEL_*`` variables say.

    ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` name the resource;
    ``OTEL_TRACES_EXPORTER`` picks the exporter (``otlp``, the default when an
    OTLP exporter is installed, ``console`` otherwise, or ``none``); the OTLP
    exporter reads ``OTEL_EXPORTER_OTLP_*`` itself. A provider the program set
    already is kept as it is.

    Returns:
        the global tracer provider.
    """
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    attributes = {} if named else {SERVICE_NAME: default_service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    exporter = _span_exporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider
