"""OpenTelemetry traces of the auth server: requests, SQL statements, outgoing HTTP.

Switched on by the ``otel`` setting (``authmesh serve --otel``, ``AUTHMESH_OTEL=1``);
needs the ``otel`` extra, and is imported only then.
"""

from __future__ import annotations

from typing import Any

from authmesh.store.db import Database
from authmesh.tracing import configure_tracer_provider, require_otel

__all__ = ["SERVICE_NAME", "configure_tracing", "instrument_server"]

#: The resource's ``service.name`` unless ``OTEL_SERVICE_NAME`` says otherwise.
SERVICE_NAME = "authmesh-server"
#: Probes and scrapes would drown the traces that matter.
_UNTRACED_URLS = "/healthz,/readyz,/metrics"
_SERVER_MODULES = (
    "opentelemetry.instrumentation.fastapi",
    "opentelemetry.instrumentation.sqlalchemy",
)


def configure_tracing() -> Any:
    """Process-wide set-up for ``authmesh serve``: the tracer provider and httpx.

    Returns:
        the global tracer provider.
    """
    require_otel("--otel", _SERVER_MODULES)
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    provider = configure_tracer_provider(SERVICE_NAME)
    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    return provider


def instrument_server(app: Any, db: Database) -> None:
    """Trace ``app``'s requests and the SQL statements of ``db``'s engine.

    Raises:
        ConfigError: the ``otel`` extra is not installed.
    """
    require_otel("the otel setting", _SERVER_MODULES)
    from opentelemetry import metrics, trace
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__

    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=_UNTRACED_URLS, exclude_spans=["receive", "send"]
    )
    # The engine's own tracer rather than SQLAlchemyInstrumentor().instrument(engine=...):
    # that one also patches create_engine for the whole process, and as a singleton
    # it would leave a second app of the same process (tests, the demo) untraced.
    name = "opentelemetry.instrumentation.sqlalchemy"
    usage = metrics.get_meter(name, __version__).create_up_down_counter(
        name="db.client.connections.usage", unit="connections"
    )
    EngineTracer(  # type: ignore[no-untyped-call]
        trace.get_tracer(name, __version__), db.engine.sync_engine, usage
    )
    db.direct_sqlite = False  # every statement through the engine, and so traced
