"""Discovery (RFC 8414), health, metrics and the headers every response carries."""

from __future__ import annotations

import pytest

from support.harness import Api


@pytest.fixture
def api(shared: Api) -> Api:
    """Read-only tests: one server per backend."""
    return shared


def test_discovery_document(api: Api) -> None:
    response = api.http.get("/.well-known/openid-configuration")

    assert response.status_code == 200
    doc = response.json()
    base = api.url
    assert doc["issuer"] == base
    assert doc["jwks_uri"] == f"{base}/.well-known/jwks.json"
    assert doc["token_endpoint"] == f"{base}/oauth/token"
    assert doc["revocation_endpoint"] == f"{base}/oauth/revoke"
    assert doc["introspection_endpoint"] == f"{base}/oauth/introspect"
    assert doc["userinfo_endpoint"] == f"{base}/userinfo"
    assert doc["revocation_feed_endpoint"] == f"{base}/revocations"
    assert doc["revocation_feed_stream_endpoint"] == f"{base}/revocations/stream"
    assert doc["grant_types_supported"] == [
        "authorization_code",
        "password",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ]
    assert doc["access_token_signing_alg_values_supported"] == ["EdDSA"]
    assert doc["dpop_signing_alg_values_supported"] == ["EdDSA", "ES256", "RS256"]
    assert "none" not in doc["introspection_endpoint_auth_methods_supported"]
    # RFC 8414's own name serves the same document.
    assert api.http.get("/.well-known/oauth-authorization-server").json() == doc


def test_every_advertised_endpoint_exists(api: Api) -> None:
    doc = api.http.get("/.well-known/openid-configuration").json()
    for name in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        # An empty POST is a client error, never a 404 or a 500.
        assert api.http.post(doc[name]).status_code in (400, 401), name
    assert api.http.get(doc["jwks_uri"]).status_code == 200
    assert api.http.get(doc["userinfo_endpoint"]).status_code == 401
    assert api.http.get(doc["revocation_feed_endpoint"]).status_code == 401


def test_health_reports_the_database_and_feed_backend(api: Api) -> None:
    response = api.http.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "up"
    expected = "sqlite-poll" if api.core.db.is_sqlite else "postgres"
    assert body["feed_backend"] == expected
    assert isinstance(body["latest_cursor"], int)


def test_metrics_count_token_requests(api: Api) -> None:
    api.login()
    api.password_grant(password="wrong-password-1")

    text = api.http.get("/metrics").text

    assert 'authmesh_token_requests_total{grant_type="password",outcome="success"}' in text
    assert 'authmesh_token_requests_total{grant_type="password",outcome="invalid_grant"}' in text
    assert "authmesh_feed_latest_cursor" in text


@pytest.mark.parametrize("path", ["/healthz", "/.well-known/jwks.json", "/nope"])
def test_security_headers_on_every_response(api: Api, path: str) -> None:
    response = api.http.get(path)

    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_unknown_path_is_a_json_404(api: Api) -> None:
    response = api.http.get("/no/such/path")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
