"""The README's "Protect a service" examples run as pasted and protect what they say.

The section's first block sets up a FastAPI service and its ``config``; every
other block goes below it, as its text says. Each runs in a namespace of its own
on top of the first, against a fake auth server: the only change to the text is
the issuer URL and the client secret, which name a real deployment's.
"""

from __future__ import annotations

import ast
import re
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask

from authmesh.service import ServiceAuth
from authmesh.testing import FakeIssuer, UvicornThread, bearer

README = Path(__file__).resolve().parents[2] / "README.md"
MODULE = "readme_example"


def _blocks() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Protect a service") :]
    section = section[: section.index("\n## ", 1)]
    fences = re.findall(r"^( *)```python\n(.*?)^\1```", section, flags=re.S | re.M)
    return [textwrap.dedent(body) for _, body in fences]


BLOCKS = _blocks()
BASE, *VARIANTS = BLOCKS


def _block(marker: str) -> str:
    (found,) = [b for b in VARIANTS if marker in b]
    return found


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _forget_the_example_module() -> Iterator[None]:
    yield
    sys.modules.pop(MODULE, None)


def _run(issuer: FakeIssuer, *blocks: str) -> dict[str, Any]:
    """The blocks run in order as one module (Strawberry resolves types through it)."""
    secret = issuer.register_client("orders", audiences=["orders"])
    module = types.ModuleType(MODULE)
    sys.modules[MODULE] = module
    namespace = module.__dict__
    for block in blocks:
        source = block.replace("https://auth.example.com", issuer.url).replace(
            'client_secret="..."', f'client_secret="{secret}"'
        )
        assert source != block or block is not BASE, "the example no longer names its issuer"
        exec(compile(source, str(README), "exec"), namespace)
    return namespace


def test_the_section_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.splitlines()[0][:40])
def test_example_is_valid_python(block: str) -> None:
    ast.parse(block)


def _serve_and_call(app: Any, issuer: FakeIssuer, method: str, path: str, **claims: Any) -> int:
    with UvicornThread(app) as service, httpx.Client(base_url=service.url) as client:
        anonymous = client.request(method, path)
        assert anonymous.status_code == 401
        token = issuer.mint(audience="orders", **claims)
        return client.request(method, path, headers=bearer(token)).status_code


def test_fastapi_example_protects_its_routes(issuer: FakeIssuer) -> None:
    namespace = _run(issuer, BASE)
    app = namespace["app"]
    assert isinstance(app, FastAPI)
    assert isinstance(namespace["auth"], ServiceAuth)

    assert _serve_and_call(app, issuer, "GET", "/orders", sub="alice", scope="orders:read") == 200
    assert _serve_and_call(app, issuer, "GET", "/orders", sub="alice", scope="other") == 403


def test_typed_parameter_example(issuer: FakeIssuer) -> None:
    app = _run(issuer, BASE, _block("CurrentPrincipal"))["app"]

    assert _serve_and_call(app, issuer, "GET", "/me", sub="alice") == 200


def test_decorator_example(issuer: FakeIssuer) -> None:
    app = _run(issuer, BASE, _block("@protected("))["app"]

    ok = _serve_and_call(app, issuer, "GET", "/orders/7", sub="alice", scope="orders:read")
    assert ok == 200


def test_flask_example(issuer: FakeIssuer) -> None:
    namespace = _run(issuer, BASE, _block("authmesh.service.flask"))
    app = namespace["app"]
    assert isinstance(app, Flask)
    try:
        client = app.test_client()
        assert client.post("/orders").status_code == 401
        token = issuer.mint(sub="alice", roles=["clerk"], scope="orders:write", audience="orders")
        answer = client.post("/orders", headers=bearer(token))
        assert answer.status_code == 200
        assert answer.json == {"created_by": "alice"}
    finally:
        namespace["auth"].stop()


def test_strawberry_example(issuer: FakeIssuer) -> None:
    app = _run(issuer, BASE, _block("authmesh.service.strawberry"))["app"]
    query = {"query": "{ report }"}

    with UvicornThread(app) as service, httpx.Client(base_url=service.url) as client:
        admin = issuer.mint(sub="alice", roles=["admin"], audience="orders")
        answer = client.post("/graphql", json=query, headers=bearer(admin))
        assert answer.json() == {"data": {"report": "alice"}}
        user = issuer.mint(sub="bob", roles=["user"], audience="orders")
        denied = client.post("/graphql", json=query, headers=bearer(user)).json()
        assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_token_exchange_example_registers_its_route(issuer: FakeIssuer) -> None:
    from authmesh.service import TokenExchanger

    namespace = _run(issuer, BASE, _block("TokenExchanger"))

    assert isinstance(namespace["for_users"], TokenExchanger)
    assert namespace["for_users"].audience == "catalog"
    paths = {getattr(route, "path", None) for route in namespace["app"].routes}
    assert "/orders/{order_id}/price" in paths


def test_operations_example_serves_the_probes_without_a_token(issuer: FakeIssuer) -> None:
    app = _run(issuer, BASE, _block("mount_operations"))["app"]

    with UvicornThread(app) as service, httpx.Client(base_url=service.url) as client:
        assert client.get("/healthz").json() == {"status": "alive"}
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert "authmesh_service_tokens_verified_total" in client.get("/metrics").text
        assert client.get("/orders").status_code == 401
