"""OpenTelemetry in the SDK (``ServiceConfig(otel=True)``): a service-to-service call stays
in one trace, and without the ``otel`` extra nothing imports OpenTelemetry."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from authmesh.service import ClientCredentialsAuth, ServiceConfig
from authmesh.service.fastapi import CurrentPrincipal, install
from authmesh.testing import FakeIssuer, UvicornThread, wait_for
from authmesh.testing.issuer import bearer
from support.tracing import capture_spans, server_spans


def _catalog(config: ServiceConfig) -> FastAPI:
    app = FastAPI()
    install(app, config)

    @app.get("/items")
    async def items(caller: CurrentPrincipal) -> dict[str, str]:
        return {"caller": caller.subject}

    return app


def _orders(config: ServiceConfig, catalog_url: str) -> FastAPI:
    app = FastAPI()
    install(app, config)
    outgoing = ClientCredentialsAuth(config, audience="catalog")

    @app.get("/checkout")
    async def checkout(user: CurrentPrincipal) -> dict[str, str]:
        # A plain client: the trace context travels through authmesh's auth alone.
        async with httpx.AsyncClient(auth=outgoing) as client:
            response = await client.get(f"{catalog_url}/items")
        return {"user": user.subject, **response.json()}

    return app


@pytest.fixture
def services(issuer: FakeIssuer) -> Iterator[tuple[str, str]]:
    """orders (which calls catalog) and catalog, both traced; their URLs."""
    secret = issuer.register_client(
        "orders", scopes=["catalog:read"], audiences=["orders", "catalog"]
    )
    orders_config = ServiceConfig(
        issuer=issuer.url, audience="orders", client_id="orders", client_secret=secret, otel=True
    )
    catalog_config = issuer.service_config("catalog", otel=True)
    catalog = UvicornThread(_catalog(catalog_config)).start()
    orders = UvicornThread(_orders(orders_config, catalog.url)).start()
    try:
        yield orders.url, catalog.url
    finally:
        orders.stop()
        catalog.stop()


def test_a_service_to_service_call_is_one_trace(
    issuer: FakeIssuer, services: tuple[str, str]
) -> None:
    orders_url, _ = services
    with capture_spans() as spans:
        _check_one_trace(issuer, orders_url, spans)


def _check_one_trace(issuer: FakeIssuer, orders_url: str, spans: InMemorySpanExporter) -> None:
    token = issuer.mint(sub="alice", audience="orders")
    response = httpx.get(f"{orders_url}/checkout", headers=bearer(token), timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"user": "alice", "caller": "orders"}

    wait_for(lambda: server_spans(spans, "GET /checkout"), message="the orders span")
    wait_for(lambda: server_spans(spans, "GET /items"), message="the catalog span")
    [checkout] = server_spans(spans, "GET /checkout")
    [items] = server_spans(spans, "GET /items")
    # catalog's span is a child of orders' span: the traceparent crossed the call.
    assert items.context.trace_id == checkout.context.trace_id
    assert items.parent is not None and items.parent.span_id == checkout.context.span_id
    # The token request of the outgoing call is a client span of the same trace.
    token_calls = [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.CLIENT and s.context.trace_id == checkout.context.trace_id
    ]
    assert any(s.name == "POST" for s in token_calls), [s.name for s in token_calls]


def test_the_sdks_calls_to_the_issuer_are_client_spans(issuer: FakeIssuer) -> None:
    from authmesh.service import ServiceAuth

    auth = ServiceAuth(issuer.service_config("orders", otel=True))
    try:
        with capture_spans() as spans:
            assert auth.keys.refresh(force=True)
            urls = {
                str(s.attributes.get("http.url", s.attributes.get("url.full")))
                for s in spans.get_finished_spans()
                if s.kind is SpanKind.CLIENT
            }
    finally:
        auth.stop()
    assert f"{issuer.url}/.well-known/openid-configuration" in urls
    assert any(url.startswith(issuer.url) and "jwks" in url for url in urls), urls


_BLOCK_OTEL = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.startswith(("opentelemetry.sdk", "opentelemetry.instrumentation")):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Block())
"""


_WITHOUT_THE_EXTRA = """
import contextlib, io, json, sys
from authmesh.errors import ConfigError
from authmesh.service import ServiceAuth, ServiceConfig
from authmesh.service.fastapi import install
from authmesh.service.flask import install as install_flask
from authmesh.server.app import create_app
from authmesh.server.config import load_settings
from fastapi import FastAPI
from flask import Flask

data_dir = sys.argv[1]
out = {}
create_app(load_settings(None, data_dir=data_dir))
config = ServiceConfig(issuer="http://127.0.0.1:1", audience="a", fail_open=True)
install(FastAPI(), config)
install_flask(Flask("a"), config, start=False)
ServiceAuth(config).http.sync_client()
out["loaded"] = sorted(
    m for m in sys.modules
    if m.endswith("tracing") or m.startswith(("opentelemetry.sdk", "opentelemetry.instrumentation"))
)
errors = []
for make in (
    lambda: ServiceConfig(issuer="http://127.0.0.1:1", audience="a", otel=True),
    lambda: create_app(load_settings(None, data_dir=data_dir, otel=True)),
):
    try:
        make()
    except ConfigError as exc:
        errors.append(str(exc))
out["errors"] = errors
from authmesh.cli.main import main
sys.argv = ["authmesh", "serve", "--otel", "--port", "1", "--data-dir", data_dir]
stderr = io.StringIO()
with contextlib.redirect_stderr(stderr):
    try:
        main()
    except SystemExit as exc:
        out["serve_status"] = exc.code
out["serve_stderr"] = stderr.getvalue()
print(json.dumps(out))
"""


def test_without_the_extra(tmp_path: Path) -> None:
    """The extra absent (the API package stays: FastAPI itself depends on it).

    Without the flag the server app and the adapters build and authmesh's tracing
    glue stays unloaded; with it, the SDK, the server and ``serve`` say what to install.
    """
    done = subprocess.run(
        [sys.executable, "-c", _BLOCK_OTEL + _WITHOUT_THE_EXTRA, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = json.loads(done.stdout)
    assert out["loaded"] == []
    first, second = out["errors"]
    assert first.startswith("ServiceConfig(otel=True) needs OpenTelemetry")
    assert second.startswith("the otel setting needs OpenTelemetry")
    assert out["serve_status"] == 2
    assert out["serve_stderr"].startswith("authmesh: error: --otel needs OpenTelemetry")
    assert "Traceback" not in out["serve_stderr"]
    for message in (first, second, out["serve_stderr"].strip()):
        assert message.endswith("pip install 'authmesh[otel]'")


def test_otel_reads_from_the_environment() -> None:
    config = ServiceConfig.from_env(
        {"AUTHMESH_ISSUER": "http://127.0.0.1:1", "AUTHMESH_AUDIENCE": "a", "AUTHMESH_OTEL": "1"},
        fail_open=True,
    )
    assert config.otel is True


def _recording_transport(seen: list[httpx.Request]) -> httpx.MockTransport:
    """The token endpoint and a target service in memory; the target's requests are kept."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            return httpx.Response(
                200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 300}
            )
        seen.append(request)
        return httpx.Response(200, json={})

    return httpx.MockTransport(handle)


@pytest.mark.parametrize("otel", [True, False])
def test_both_outgoing_auths_forward_the_trace_context(otel: bool) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from authmesh.service import TokenExchanger

    issuer = "http://127.0.0.1:9"
    config = ServiceConfig(
        issuer=issuer, audience="orders", client_id="orders", client_secret="s", otel=otel
    )
    seen: list[httpx.Request] = []
    transport = _recording_transport(seen)
    endpoint = f"{issuer}/token"
    auths: list[httpx.Auth] = [
        ClientCredentialsAuth(config, token_endpoint=endpoint, transport=transport),
        TokenExchanger(
            config, audience="catalog", token_endpoint=endpoint, transport=transport
        ).for_user("user-token"),
    ]
    tracer = TracerProvider().get_tracer("test")
    for auth in auths:
        with (
            tracer.start_as_current_span("caller") as span,
            httpx.Client(transport=transport, auth=auth) as client,
        ):
            assert client.get("http://catalog.test/items").status_code == 200
        context = span.get_span_context()
        flags = f"{int(context.trace_flags):02x}"
        expected = f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags}"
        assert seen[-1].headers.get("traceparent") == (expected if otel else None)
    assert len(seen) == 2
