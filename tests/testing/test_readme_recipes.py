"""The README's "Testing your service" recipes, run as written against real apps.

Each block is executed verbatim but for its ``from orders.main import create_app``
line: the factory below stands in for the reader's own, built the way the
README's "Protect a service" section shows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from flask import Flask, g

from authmesh.service import Principal, ServiceAuth, ServiceConfig
from authmesh.service.fastapi import install, require
from authmesh.service.flask import AuthMesh
from authmesh.testing import FakeIssuer, UvicornThread, bearer

README = Path(__file__).resolve().parents[2] / "README.md"
FACTORY_IMPORT = "from orders.main import create_app\n"


def recipes() -> list[str]:
    """The ``python`` blocks of the README's "Testing your service" section."""
    text = README.read_text()
    start = text.index("## Testing your service")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


def fastapi_orders(config: ServiceConfig) -> FastAPI:
    """A reader's FastAPI service: ``GET /orders`` needs ``orders:read``."""
    app = FastAPI()
    install(app, ServiceAuth(config))

    @app.get("/orders")
    async def orders(user: Principal = Depends(require(scopes="orders:read"))) -> list[str]:
        return [f"order of {user.subject}"]

    return app


def flask_orders(config: ServiceConfig) -> Flask:
    """The same service in Flask."""
    app = Flask("orders")
    auth = AuthMesh(app, config)

    @app.get("/orders")
    @auth.require(scopes="orders:read")
    def orders() -> list[str]:
        return [f"order of {g.principal.subject}"]

    return app


def run_recipe(source: str, factory: Callable[[ServiceConfig], Any], issuer: FakeIssuer) -> Any:
    """Execute one block with ``create_app`` = ``factory``, then call its test function."""
    assert FACTORY_IMPORT in source, "the recipe imports the reader's factory"
    namespace: dict[str, Any] = {"create_app": factory}
    exec(compile(source.replace(FACTORY_IMPORT, ""), str(README), "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 1, "one test per recipe"
    tests[0](authmesh_issuer=issuer)
    return namespace


@pytest.fixture
def flask_apps() -> Iterator[list[Flask]]:
    """Flask apps the recipe built, whose feed threads are stopped afterwards."""
    apps: list[Flask] = []
    yield apps
    for app in apps:
        app.extensions["authmesh"].stop()


def test_the_readme_has_a_fastapi_and_a_flask_recipe() -> None:
    blocks = recipes()
    assert len(blocks) == 2
    assert "UvicornThread" in blocks[0] and "test_client()" in blocks[1]


def test_fastapi_recipe_a_minted_token_passes_and_a_revoked_one_fails(
    authmesh_issuer: FakeIssuer,
) -> None:
    run_recipe(recipes()[0], fastapi_orders, authmesh_issuer)
    assert [e.kind for e in authmesh_issuer.state.events] == ["sub"]


def test_flask_recipe_a_minted_token_passes_and_a_revoked_one_fails(
    authmesh_issuer: FakeIssuer, flask_apps: list[Flask]
) -> None:
    def factory(config: ServiceConfig) -> Flask:
        flask_apps.append(flask_orders(config))
        return flask_apps[-1]

    run_recipe(recipes()[1], factory, authmesh_issuer)
    assert len(flask_apps) == 1


@pytest.mark.parametrize("factory", [fastapi_orders, flask_orders], ids=["fastapi", "flask"])
def test_without_the_scope_the_recipe_token_is_forbidden(
    authmesh_issuer: FakeIssuer, factory: Callable[[ServiceConfig], Any]
) -> None:
    """The three lines protect for real: a token lacking the scope gets a 403."""
    app = factory(authmesh_issuer.service_config(audience="orders"))
    token = authmesh_issuer.mint(sub="bob", scope="orders:write", audience="orders")
    if isinstance(app, Flask):
        try:
            assert app.test_client().get("/orders", headers=bearer(token)).status_code == 403
        finally:
            app.extensions["authmesh"].stop()
        return
    with UvicornThread(app) as service, httpx.Client(base_url=service.url) as client:
        assert client.get("/orders", headers=bearer(token)).status_code == 403
        assert client.get("/orders").status_code == 401
