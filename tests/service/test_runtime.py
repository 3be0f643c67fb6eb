"""ServiceAuth wiring, health, metrics."""

from __future__ import annotations

import sys

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from authmesh.errors import ConfigError
from authmesh.service import ServiceAuth, ServiceConfig, register_metrics
from support.sdk import MOCK_ISSUER, MockIssuer, mock_config


def test_no_feed_credentials_needs_explicit_fail_open() -> None:
    with pytest.raises(ConfigError, match="fail_open"):
        ServiceAuth(ServiceConfig(issuer=MOCK_ISSUER, audience="orders"))


def test_fail_open_without_feed(mock_issuer: MockIssuer) -> None:
    auth = ServiceAuth(
        ServiceConfig(issuer=MOCK_ISSUER, audience="orders", fail_open=True),
        transport=mock_issuer.transport,
    )
    assert auth.feed is None and auth.revocations is None
    auth.start()
    try:
        assert auth.verify(mock_issuer.state.mint()).subject == "user-1"
        health = auth.health()
        assert health["status"] == "degraded" and health["feed"] == {"enabled": False}
    finally:
        auth.stop()


def test_health_when_the_issuer_is_unreachable(mock_issuer: MockIssuer) -> None:
    mock_issuer.down = True
    auth = ServiceAuth(mock_config(), transport=mock_issuer.transport)
    auth.start(wait=0.2)
    try:
        health = auth.health()
        assert health["status"] == "failing"
        assert health["jwks"]["loaded"] is False and health["jwks"]["last_error"]
        assert health["feed"]["connected"] is False and health["feed"]["last_error"]
    finally:
        auth.stop()


async def test_async_start_with_the_issuer_down_does_not_hang(mock_issuer: MockIssuer) -> None:
    mock_issuer.down = True
    auth = ServiceAuth(mock_config(), async_transport=mock_issuer.transport)
    await auth.astart(wait=0.2)
    assert auth.health()["status"] == "failing"
    await auth.astop()


def test_prometheus_metrics(mock_auth: ServiceAuth, mock_issuer: MockIssuer) -> None:
    registry = CollectorRegistry()
    assert register_metrics(mock_auth, registry)
    token = mock_issuer.state.mint()
    mock_auth.verify(token)
    mock_auth.verify(token)
    with pytest.raises(Exception):  # noqa: B017 - any rejection
        mock_auth.verify("x.y.z")
    text = generate_latest(registry).decode()
    assert "authmesh_service_tokens_verified_total 1.0" in text
    assert "authmesh_service_token_cache_hits_total 1.0" in text
    assert 'authmesh_service_tokens_rejected_total{reason="malformed"} 1.0' in text
    assert "authmesh_service_feed_stale 0.0" in text
    assert 'authmesh_service_revocations_live{kind="jti"} 0.0' in text


def test_metrics_are_optional(monkeypatch: pytest.MonkeyPatch, mock_auth: ServiceAuth) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    assert register_metrics(mock_auth) is False
