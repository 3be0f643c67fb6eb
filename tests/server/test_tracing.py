"""OpenTelemetry on the auth server (``otel`` setting): request spans with their SQL children."""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from authmesh.testing import wait_for
from support.harness import ALICE, Api
from support.oidc_flow import Browser, register_browser_clients
from support.tracing import capture_spans, server_spans


def test_token_request_is_a_server_span_with_child_sql_spans(
    start_server: Callable[..., Api],
) -> None:
    api = start_server(otel=True)
    with capture_spans() as spans:
        assert api.password_grant().status_code == 200
        _check_token_trace(spans)


def test_code_exchange_statements_are_traced_too(start_server: Callable[..., Api]) -> None:
    # On SQLite the exchange's statements skip SQLAlchemy's execution, but not while
    # the engine is traced.
    api = start_server(otel=True)
    register_browser_clients(api)
    browser = Browser(api)
    try:
        code = browser.sign_in(*ALICE)["code"]
        with capture_spans() as spans:
            assert browser.exchange(code).status_code == 200
            wait_for(lambda: server_spans(spans, "POST /oauth/token"), message="the token span")
            [server] = server_spans(spans, "POST /oauth/token")
            statements = " ".join(
                str(s.attributes.get("db.statement"))
                for s in spans.get_finished_spans()
                if s.context.trace_id == server.context.trace_id and s.kind is SpanKind.CLIENT
            )
    finally:
        browser.close()
    assert "authorization_codes" in statements and "refresh_tokens" in statements


def _check_token_trace(spans: InMemorySpanExporter) -> None:

    wait_for(lambda: server_spans(spans, "POST /oauth/token"), message="the token request span")
    [server] = server_spans(spans, "POST /oauth/token")
    trace_id = server.context.trace_id
    in_trace = [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]
    sql = [s for s in in_trace if s.kind is SpanKind.CLIENT and s.attributes.get("db.statement")]
    assert sql, [s.name for s in in_trace]
    # The statements run inside the request: children of its span.
    assert all(s.parent is not None and s.parent.span_id == server.context.span_id for s in sql)
    statements = " ".join(str(s.attributes["db.statement"]) for s in sql)
    assert "users" in statements and "refresh_tokens" in statements
    assert (
        server.attributes.get(
            "http.status_code", server.attributes.get("http.response.status_code")
        )
        == 200
    )


def test_server_span_continues_the_callers_trace_and_skips_probes(
    start_server: Callable[..., Api],
) -> None:
    api = start_server(otel=True)
    with capture_spans() as spans:
        _check_continued_trace(api, spans)


def _check_continued_trace(api: Api, spans: InMemorySpanExporter) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    caller_span = "00f067aa0ba902b7"
    response = api.http.get(
        "/.well-known/jwks.json", headers={"traceparent": f"00-{trace_id}-{caller_span}-01"}
    )
    assert response.status_code == 200
    assert api.http.get("/healthz").status_code == 200
    assert api.http.get("/metrics").status_code == 200

    wait_for(lambda: server_spans(spans, "GET /.well-known/jwks.json"), message="the JWKS span")
    [server] = server_spans(spans, "GET /.well-known/jwks.json")
    assert format(server.context.trace_id, "032x") == trace_id
    assert server.parent is not None and format(server.parent.span_id, "016x") == caller_span
    names = {s.name for s in spans.get_finished_spans()}
    assert not {n for n in names if "healthz" in n or "metrics" in n}, names
