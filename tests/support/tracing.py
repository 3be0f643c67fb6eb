"""Spans of the test process in memory, recorded only while a test captures them.

OpenTelemetry's global tracer provider can be set once per process, and once it
is, FastAPI's native telemetry traces every FastAPI app of the process. A
sampler that drops everything outside :func:`capture_spans` keeps the other
tests of the run from filling the exporter.
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


def _exporter() -> tuple[_Switch, InMemorySpanExporter]:
    if not _state:
        switch = _Switch()
        provider = TracerProvider(sampler=switch)
        exporter = InMemorySpanExporter()
        # Simple, not batched: a span is readable as soon as it ends.
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _state.update(switch=switch, exporter=exporter)
    return _state["switch"], _state["exporter"]


@contextmanager
def capture_spans() -> Iterator[InMemorySpanExporter]:
    """Record the process's spans into a fresh in-memory exporter while inside."""
    switch, exporter = _exporter()
    exporter.clear()
    switch.on = True
    try:
        yield exporter
    finally:
        switch.on = False
        exporter.clear()


def server_spans(exporter: InMemorySpanExporter, route: str) -> list[ReadableSpan]:
    """The finished server spans of requests to ``route`` (``"POST /oauth/token"``)."""
    return [
        s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER and s.name == route
    ]
