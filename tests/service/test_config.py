"""ServiceConfig: validation at start, with a clear message."""

from __future__ import annotations

from datetime import timedelta

import pytest

from authmesh.errors import ConfigError
from authmesh.service import ServiceConfig


def test_defaults_and_number_durations() -> None:
    config = ServiceConfig(issuer="https://auth.example.com", audience="orders", leeway=5)
    assert config.leeway == timedelta(seconds=5)
    assert config.max_feed_staleness == timedelta(seconds=10)
    assert config.fail_open is False
    assert config.audiences == frozenset({"orders"})
    assert config.effective_realm == "orders"
    assert config.discovery_url == "https://auth.example.com/.well-known/openid-configuration"


@pytest.mark.parametrize(
    "issuer",
    ["http://127.0.0.1:8000", "http://localhost:9000/auth", "http://[::1]:80", "https://a.b"],
    ids=["ipv4-loopback", "localhost", "ipv6-loopback", "https"],
)
def test_accepted_issuers(issuer: str) -> None:
    assert ServiceConfig(issuer=issuer, audience="orders").issuer == issuer


@pytest.mark.parametrize(
    ("issuer", "fragment"),
    [
        ("http://auth.example.com", "plain http"),
        ("http://10.0.0.1", "plain http"),
        ("ftp://auth.example.com", "https URL"),
        ("auth.example.com", "https URL"),
        ("https://auth.example.com?tenant=1", "query"),
        ("https://auth.example.com#x", "fragment"),
    ],
    ids=["http-remote", "http-private-ip", "ftp", "no-scheme", "query", "fragment"],
)
def test_refused_issuers(issuer: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        ServiceConfig(issuer=issuer, audience="orders")


def test_insecure_http_needs_explicit_consent() -> None:
    config = ServiceConfig(
        issuer="http://auth.internal", audience="orders", allow_insecure_http=True
    )
    assert config.issuer == "http://auth.internal"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"client_id": "orders"}, "go together"),
        ({"client_secret": "x"}, "go together"),
        ({"client_id": "a:b", "client_secret": "x"}, "':'"),
        ({"max_feed_staleness": 0}, "positive"),
        ({"jwks_min_refetch_interval": -1}, "positive"),
        ({"leeway": 301}, "leeway"),
        ({"verified_cache_size": -1}, "verified_cache_size"),
        ({"audience": ""}, "audience"),
        ({"audience": set()}, "audience"),
        ({"algorithms": {"none"}}, "algorithms"),
        ({"ca_bundle": "/nonexistent.pem"}, "ca_bundle"),
        ({"jwks_max_ttl": 1, "jwks_min_refetch_interval": 5}, "jwks_max_ttl"),
        ({"leeway": "30"}, "timedelta"),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(v),
)
def test_invalid_settings(overrides: dict[str, object], fragment: str) -> None:
    values: dict[str, object] = {"issuer": "https://auth.example.com", "audience": "orders"}
    values.update(overrides)
    with pytest.raises(ConfigError, match=fragment):
        ServiceConfig(**values)  # type: ignore[arg-type]


def test_secret_is_not_in_repr() -> None:
    config = ServiceConfig(
        issuer="https://a.b", audience="orders", client_id="orders", client_secret="hunter2"
    )
    assert "hunter2" not in repr(config)


def test_audience_set_and_realm() -> None:
    config = ServiceConfig(issuer="https://a.b", audience={"b", "a"})
    assert config.audience == frozenset({"a", "b"})
    assert config.effective_realm == "a"
    assert ServiceConfig(issuer="https://a.b", audience="x", realm="shop").effective_realm == "shop"


def test_frozen() -> None:
    config = ServiceConfig(issuer="https://a.b", audience="orders")
    with pytest.raises(AttributeError):
        config.fail_open = True  # type: ignore[misc]


def test_from_env() -> None:
    env = {
        "AUTHMESH_ISSUER": "https://auth.example.com",
        "AUTHMESH_AUDIENCE": "orders, billing",
        "AUTHMESH_CLIENT_ID": "orders",
        "AUTHMESH_CLIENT_SECRET": "s",
        "AUTHMESH_MAX_FEED_STALENESS": "3.5",
        "AUTHMESH_FAIL_OPEN": "true",
        "AUTHMESH_VERIFIED_CACHE_SIZE": "10",
    }
    config = ServiceConfig.from_env(env)
    assert config.audience == frozenset({"orders", "billing"})
    assert config.max_feed_staleness == timedelta(seconds=3.5)
    assert config.fail_open is True
    assert config.verified_cache_size == 10
    assert ServiceConfig.from_env(env, audience="x").audience == "x"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({}, "AUTHMESH_ISSUER"),
        ({"AUTHMESH_ISSUER": "https://a.b"}, "AUTHMESH_AUDIENCE"),
        (
            {"AUTHMESH_ISSUER": "https://a.b", "AUTHMESH_AUDIENCE": "o", "AUTHMESH_LEEWAY": "x"},
            "seconds",
        ),
        (
            {"AUTHMESH_ISSUER": "https://a.b", "AUTHMESH_AUDIENCE": "o", "AUTHMESH_FAIL_OPEN": "?"},
            "true or false",
        ),
    ],
    ids=["no-issuer", "no-audience", "bad-duration", "bad-bool"],
)
def test_from_env_errors(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        ServiceConfig.from_env(env)
