"""Fixtures of the CLI tests: keys of every algorithm, a token maker, a runner, a JWKS server.

Test modules cannot import each other (``--import-mode=importlib``), so the
helpers travel as fixtures.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from authmesh.cli.main import app
from authmesh.jose import Key, sign_jwt

ISSUER = "https://auth.example.com"
AUDIENCE = "orders"
ALGS = ("EdDSA", "ES256", "RS256", "HS256")

Run = Callable[..., Result]
MakeToken = Callable[..., str]


@pytest.fixture(scope="session")
def keys() -> dict[str, Key]:
    """One private key per algorithm, with readable kids."""
    return {alg: Key.generate(alg, kid=f"{alg.lower()}-1") for alg in ALGS}


@pytest.fixture
def claims() -> Callable[..., dict[str, Any]]:
    """RFC 9068 access-token claims issued now, with overrides (``None`` removes one)."""

    def make(**overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "alice",
            "aud": AUDIENCE,
            "exp": now + 600,
            "iat": now,
            "jti": "j-1",
            "client_id": "web",
            "scope": "orders:read",
        }
        base.update(overrides)
        return {name: value for name, value in base.items() if value is not None}

    return make


@pytest.fixture
def make_token(keys: dict[str, Key], claims: Callable[..., dict[str, Any]]) -> MakeToken:
    """A signed access token: ``make_token(alg="ES256", exp=..., typ="JWT")``."""

    def make(alg: str = "EdDSA", *, typ: str = "at+jwt", **overrides: Any) -> str:
        return sign_jwt(claims(**overrides), keys[alg], typ=typ)

    return make


@pytest.fixture
def run() -> Run:
    """Invoke ``authmesh`` in-process; a wide terminal so that lines do not wrap."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input, env={"COLUMNS": "200"})

    return invoke


@pytest.fixture
def jwk_file(tmp_path: Path) -> Callable[[Mapping[str, Any], str], Path]:
    """Write a JSON document (a JWK or a JWKS) to a file; returns its path."""

    def write(doc: Mapping[str, Any], name: str = "key.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(doc))
        return path

    return write


class _Documents(BaseHTTPRequestHandler):
    documents: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = self.documents.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body or b'{"error": "not found"}')

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def http_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A real HTTP server on a free loopback port: (base URL, path -> body served)."""
    documents: dict[str, bytes] = {}
    handler = type("Handler", (_Documents,), {"documents": documents})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", documents
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
