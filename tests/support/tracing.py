"""Spans of the test process in memory, recorded only while a test captures them.

The global tracer provider is set only inside :func:`capture_spans` and unset
again after: once one is set, FastAPI's native telemetry traces every FastAPI
app of the process, and the rest of the run should not pay for it. The API
allows setting it once per process, so the reset goes through the same private
globals as OpenTelemetry's own test utilities (``reset_trace_globals``). Tracers
handed out during a capture stay bound to the provider, so its sampler drops
whatever they start outside one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util._once import Once
from opentelemetry.util.types import Attributes

__all__ = ["capture_spans", "server_spans"]


class _Switch(Sampler):
    """Records every span while ``on``, none otherwise."""

    def __init__(self) -> None:
        self.on = False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if not self.on:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "authmesh tests: on while a test captures spans"


_state: dict[str, Any] = {}


def _parts() -> tuple[TracerProvider, _Switch, InMemorySpanExporter]:
    if not _state:
        switch = _Switch()
        provider = TracerProvider(sampler=switch)
        exporter = InMemorySpanExporter()
        # Simple, not batched: a span is readable as soon as it ends.
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        _state.update(provider=provider, switch=switch, exporter=exporter)
    return _state["provider"], _state["switch"], _state["exporter"]


def _set_global(provider: TracerProvider | None) -> None:
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    if provider is not None:
        trace.set_tracer_provider(provider)


@contextmanager
def capture_spans() -> Iterator[InMemorySpanExporter]:
    """Record the process's spans into a fresh in-memory exporter while inside."""
    provider, switch, exporter = _parts()
    assert trace._TRACER_PROVIDER is None, "another tracer provider is set"
    exporter.clear()
    _set_global(provider)
    switch.on = True
    try:
        yield exporter
    finally:
        switch.on = False
        _set_global(None)
        exporter.clear()


def server_spans(exporter: InMemorySpanExporter, route: str) -> list[ReadableSpan]:
    """The finished server spans of requests to ``route`` (``"POST /oauth/token"``)."""
    return [
        s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER and s.name == route
    ]
