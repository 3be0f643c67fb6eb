"""``authmesh token decode --introspect``: a revoked token is INVALID (real auth server)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import Result

from authmesh.jose import Key
from authmesh.testing.authserver import AuthServerThread, seed_demo, settings_for
from authmesh.testing.databases import database

Run = Callable[..., Result]
MakeToken = Callable[..., str]


@dataclass(frozen=True)
class Issuer:
    """A running, seeded auth server and the service client's secret."""

    url: str
    service_secret: str

    @property
    def discovery(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    @property
    def introspection(self) -> str:
        return f"{self.url}/oauth/introspect"

    def login(self) -> str:
        """A fresh access token of alice, from the public ``web`` client."""
        form = {
            "grant_type": "password",
            "username": "alice",
            "password": "alice-password-1",
            "client_id": "web",
            "audience": "orders",
        }
        response = httpx.post(f"{self.url}/oauth/token", data=form, timeout=15)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def revoke(self, token: str) -> None:
        """RFC 7009 revocation of an access token by the client it was issued to."""
        form = {"token": token, "client_id": "web"}
        response = httpx.post(f"{self.url}/oauth/revoke", data=form, timeout=15)
        assert response.status_code == 200, response.text

    def verify_args(self, *extra: str) -> list[str]:
        """Options that verify against this issuer and introspect as ``orders-svc``."""
        return [
            "--jwks",
            self.discovery,
            "--issuer",
            self.url,
            "--audience",
            "orders",
            *extra,
        ]


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    with database("sqlite", tmp_path_factory.mktemp("issuer")) as target:
        server = AuthServerThread(settings_for(target)).start()
        try:
            secret = seed_demo(server)["service_secret"]
            yield Issuer(server.url, secret)
        finally:
            server.stop()


def test_without_introspection_a_revoked_token_verifies_but_says_so(
    run: Run, issuer: Issuer
) -> None:
    token = issuer.login()
    issuer.revoke(token)
    result = run("token", "decode", token, *issuer.verify_args())
    assert result.exit_code == 0, result.output
    assert "VALID  signed by key" in result.stdout
    assert "revocation not checked" in result.stdout
    doc = json.loads(run("token", "decode", token, *issuer.verify_args(), "--json").stdout)
    assert doc["verdict"]["status"] == "valid"
    assert doc["revocation"] == {
        "checked": False,
        "active": None,
        "endpoint": None,
        "message": "revocation not checked",
    }


def test_an_active_token_is_valid_and_checked(run: Run, issuer: Issuer) -> None:
    token = issuer.login()
    args = issuer.verify_args(
        "--introspect",
        issuer.introspection,
        "--client-id",
        "orders-svc",
        "--client-secret",
        issuer.service_secret,
    )
    result = run("token", "decode", token, *args)
    assert result.exit_code == 0, result.output
    assert "VALID  signed by key" in result.stdout
    assert f"revocation checked: active at {issuer.introspection}" in result.stdout
    assert "revocation not checked" not in result.stdout
    doc = json.loads(run("token", "decode", token, *args, "--json").stdout)
    assert doc["verdict"]["status"] == "valid"
    assert doc["revocation"] == {
        "checked": True,
        "active": True,
        "endpoint": issuer.introspection,
        "message": "active at the introspection endpoint",
    }


@pytest.mark.parametrize("where", ["endpoint", "discovery"])
def test_a_revoked_token_is_invalid_with_reason_revoked(
    run: Run, issuer: Issuer, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    token = issuer.login()
    issuer.revoke(token)
    url = issuer.introspection if where == "endpoint" else issuer.discovery
    args = issuer.verify_args("--introspect", url, "--client-id", "orders-svc")
    monkeypatch.setenv("AUTHMESH_CLIENT_SECRET", issuer.service_secret)
    result = run("token", "decode", token, *args)
    assert result.exit_code == 1, result.output
    assert "INVALID: revoked: the token has been revoked" in result.stdout
    assert f"hint: {issuer.introspection} says the token is not active" in result.stdout
    assert "alice" in result.stdout  # still shows what the token claims
    json_result = run("token", "decode", token, *args, "--json")
    assert json_result.exit_code == 1
    doc = json.loads(json_result.stdout)
    assert doc["verdict"]["status"] == "invalid"
    assert doc["verdict"]["valid"] is False
    assert doc["verdict"]["reason"] == "revoked"
    assert doc["revocation"]["checked"] is True
    assert doc["revocation"]["active"] is False


def test_a_locally_invalid_token_is_not_sent_to_the_issuer(run: Run, issuer: Issuer) -> None:
    args = [
        *("--jwks", issuer.discovery, "--audience", "billing"),
        *("--introspect", issuer.introspection),
        *("--client-id", "orders-svc", "--client-secret", "wrong"),
    ]
    result = run("token", "decode", issuer.login(), *args)  # asking would be exit 2
    assert result.exit_code == 1
    assert "INVALID: wrong_audience:" in result.stdout
    assert "revocation" not in result.stdout


@pytest.mark.parametrize(
    ("client_id", "secret", "message"),
    [
        ("orders-svc", "wrong-secret", "HTTP 401 (invalid_client)"),
        ("web", "anything", "HTTP 401 (invalid_client)"),
    ],
    ids=["wrong-secret", "public-client"],
)
def test_refused_credentials_are_a_usage_error(
    run: Run, issuer: Issuer, client_id: str, secret: str, message: str
) -> None:
    args = issuer.verify_args(
        "--introspect", issuer.introspection, "--client-id", client_id, "--client-secret", secret
    )
    result = run("token", "decode", issuer.login(), *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("authmesh: error: ")
    assert message in result.stderr
    assert secret not in result.output
    assert "Traceback" not in result.output


def test_a_discovery_document_without_the_endpoint_is_a_usage_error(
    run: Run, issuer: Issuer, http_server: tuple[str, dict[str, bytes]]
) -> None:
    base, documents = http_server
    documents["/.well-known/openid-configuration"] = b'{"issuer": "https://elsewhere"}'
    args = issuer.verify_args(
        "--introspect",
        f"{base}/.well-known/openid-configuration",
        "--client-id",
        "orders-svc",
        "--client-secret",
        issuer.service_secret,
    )
    result = run("token", "decode", issuer.login(), *args)
    assert result.exit_code == 2
    assert "names no introspection_endpoint" in result.stderr


def test_introspection_needs_client_credentials(run: Run, make_token: MakeToken) -> None:
    args = ["--key", "k.json", "--introspect", "http://127.0.0.1:9/introspect"]
    result = run("token", "decode", make_token(), *args, "--client-id", "orders-svc")
    assert result.exit_code == 2
    assert "--introspect needs --client-id and --client-secret" in result.stderr


def test_client_credentials_alone_ask_nothing(
    run: Run,
    make_token: MakeToken,
    keys: dict[str, Key],
    jwk_file: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTHMESH_CLIENT_ID", "orders-svc")
    monkeypatch.setenv("AUTHMESH_CLIENT_SECRET", "s3cret")
    key = jwk_file(keys["EdDSA"].public().to_jwk())
    result = run("token", "decode", make_token(), "--key", str(key))
    assert result.exit_code == 0, result.output
    assert "revocation not checked" in result.stdout
