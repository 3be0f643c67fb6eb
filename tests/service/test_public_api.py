"""The SDK's public surface: exact ``__all__``s, and no import of the server side."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import authmesh.service

SERVICE_DIR = Path(authmesh.service.__file__).parent

#: What a service author imports: the facade and one module per concern or framework.
PUBLIC_MODULES = [
    "authmesh.service",
    "authmesh.service.bearer",
    "authmesh.service.config",
    "authmesh.service.dpop",
    "authmesh.service.errors",
    "authmesh.service.fastapi",
    "authmesh.service.flask",
    "authmesh.service.httpx_auth",
    "authmesh.service.metrics",
    "authmesh.service.operations",
    "authmesh.service.principal",
    "authmesh.service.service_auth",
    "authmesh.service.starlette",
    "authmesh.service.stats",
    "authmesh.service.strawberry",
    "authmesh.service.token_exchange",
    "authmesh.service.verifier",
    "authmesh.service.wsgi",
]
#: The plumbing behind ServiceAuth: private modules, named with a leading underscore.
PRIVATE_MODULES = [
    "authmesh.service._cache",
    "authmesh.service._discovery",
    "authmesh.service._fastapi_route",
    "authmesh.service._feed",
    "authmesh.service._http",
    "authmesh.service._jwks",
    "authmesh.service._live",
    "authmesh.service._live_asgi",
    "authmesh.service._revocations",
    "authmesh.service._sse",
    "authmesh.service._ssf_push",
    "authmesh.service._ssf_push_http",
    "authmesh.service._ssf_push_task",
    "authmesh.service._ssf_receiver",
    "authmesh.service._ssf_sets",
    "authmesh.service._ssf_stream",
    "authmesh.service._starlette_bearer",
    "authmesh.service._starlette_errors",
    "authmesh.service._starlette_operations",
    "authmesh.service._subscriber",
]
MODULES = PUBLIC_MODULES + PRIVATE_MODULES

#: The facade: what a service author uses, and nothing of the plumbing.
FACADE = {
    "BearerError",
    "Challenge",
    "ClientCredentialsAuth",
    "DPoPAuth",
    "DiscoveryError",
    "FeedError",
    "FeedUnauthorized",
    "InsufficientScope",
    "InsufficientUserAuthentication",
    "InvalidRequest",
    "IssuerError",
    "MissingToken",
    "Principal",
    "ServiceAuth",
    "ServiceConfig",
    "ServiceStats",
    "TokenRejected",
    "TokenExchanger",
    "TokenRequestError",
    "TokenRevoked",
    "Verifier",
    "VerifierUnavailable",
    "challenge_for",
    "check_access",
    "parse_authorization",
    "register_metrics",
}

#: Every framework adapter's entry point: ``install(app, config_or_auth)``.
ADAPTERS = [
    "authmesh.service.fastapi",
    "authmesh.service.flask",
    "authmesh.service.starlette",
    "authmesh.service.strawberry",
    "authmesh.service.wsgi",
]


def test_facade_exports_exactly_all() -> None:
    public = {
        name
        for name in vars(authmesh.service)
        if not name.startswith("_")
        and not isinstance(getattr(authmesh.service, name), type(sys))
        and name != "annotations"
    }
    assert public == set(authmesh.service.__all__)


def test_facade_is_what_a_service_author_uses() -> None:
    assert set(authmesh.service.__all__) == FACADE


def test_every_sdk_module_is_listed() -> None:
    found = {f"authmesh.service.{p.stem}" for p in SERVICE_DIR.glob("*.py")}
    found = {"authmesh.service" if m.endswith(".__init__") else m for m in found}
    assert found == set(MODULES)


@pytest.mark.parametrize("module", ADAPTERS)
def test_every_adapter_has_install(module: str) -> None:
    mod = importlib.import_module(module)
    assert "install" in mod.__all__
    params = list(inspect.signature(mod.install).parameters)
    assert params[:2] == ["app", "config_or_auth"]


def test_facade_all_is_sorted() -> None:
    names = authmesh.service.__all__
    assert list(names) == sorted(names, key=lambda n: (not n[0].isupper(), n))


@pytest.mark.parametrize("module", MODULES)
def test_every_module_declares_all_and_it_resolves(module: str) -> None:
    mod = importlib.import_module(module)
    assert isinstance(mod.__all__, list)
    assert len(set(mod.__all__)) == len(mod.__all__)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"


#: third-party framework -> the only SDK modules allowed to import it.
FRAMEWORK_HOMES = {
    "fastapi": {"fastapi", "_fastapi_route"},
    "flask": {"flask"},
    "strawberry": {"strawberry"},
    "starlette": {
        "starlette",
        "_starlette_bearer",
        "_starlette_errors",
        "_starlette_operations",
        "fastapi",
        "_fastapi_route",
        "strawberry",
    },
    "werkzeug": set(),
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted(SERVICE_DIR.glob("*.py")), ids=lambda p: p.stem)
def test_module_imports_stay_on_the_service_side(path: Path) -> None:
    for name in _imports(path):
        top = name.split(".")[0]
        assert not name.startswith(("authmesh.server", "authmesh.store")), name
        assert top != "sqlalchemy"
        if top in FRAMEWORK_HOMES:
            assert path.stem in FRAMEWORK_HOMES[top], f"{path.stem} imports {name}"
        if name.startswith("authmesh.service."):
            adapter = name.rsplit(".", 1)[1]
            if adapter in ("fastapi", "flask", "strawberry", "starlette", "wsgi"):
                # Adapters may build on starlette's; nothing else imports an adapter.
                assert adapter == "starlette" and path.stem in (
                    "fastapi",
                    "_fastapi_route",
                    "strawberry",
                ), name


def test_importing_the_sdk_loads_no_framework_and_no_server() -> None:
    # A fresh interpreter shows what `import authmesh.service` really drags in.
    code = (
        "import sys, authmesh.service\n"
        "bad = ('authmesh.server', 'authmesh.store', 'sqlalchemy', 'fastapi', 'flask',\n"
        "       'starlette', 'strawberry', 'werkzeug')\n"
        "print(' '.join(sorted(m for m in sys.modules\n"
        "    if any(m == b or m.startswith(b + '.') for b in bad))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert out == ""
