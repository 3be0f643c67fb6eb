"""JWKSCache: discovery, max-age, rate-limited refetch, cached keys while the issuer is down."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from authmesh.jose import Key, TokenRejected
from authmesh.service import DiscoveryError, ServiceAuth, ServiceStats
from authmesh.service._discovery import Discovery
from authmesh.service._http import HttpClients
from authmesh.service._jwks import JWKSCache, cache_lifetime
from authmesh.testing import FakeClock
from support.sdk import MOCK_ISSUER, MockIssuer, mock_config


def make_cache(issuer: MockIssuer, clock: FakeClock, **overrides: Any) -> JWKSCache:
    config = mock_config(**overrides)
    http = HttpClients(config, transport=issuer.transport, async_transport=issuer.transport)
    discovery = Discovery(config, http, monotonic=clock)
    return JWKSCache(config, discovery, http, stats=ServiceStats(), monotonic=clock)


@pytest.mark.parametrize(
    ("header", "ttl"),
    [
        (None, 300),
        ("max-age=120", 120),
        ("public, max-age=60, must-revalidate", 60),
        ('max-age="90"', 90),
        ("max-age=1", 10),
        ("max-age=999999", 3600),
        ("no-store", 10),
        ("no-cache, max-age=100", 10),
        ("max-age=abc", 300),
    ],
    ids=[
        "none",
        "plain",
        "with-others",
        "quoted",
        "floor",
        "ceiling",
        "no-store",
        "no-cache",
        "garbage",
    ],
)
def test_cache_lifetime(header: str | None, ttl: float) -> None:
    headers = httpx.Headers({} if header is None else {"Cache-Control": header})
    assert cache_lifetime(headers, default=300, floor=10, ceiling=3600) == ttl


def test_loads_keys_through_discovery(mock_issuer: MockIssuer, clock: FakeClock) -> None:
    cache = make_cache(mock_issuer, clock)
    assert not cache.loaded and cache.get(None) is None
    assert cache.refresh(force=True)
    key = mock_issuer.state.signing_key()
    assert cache.loaded and cache.kids == {key.kid}
    assert cache.get(key.kid) is not None and not cache.get(key.kid).is_private  # type: ignore[union-attr]
    assert mock_issuer.requests == ["/.well-known/openid-configuration", "/.well-known/jwks.json"]


def test_refresh_is_due_after_max_age(clock: FakeClock) -> None:
    issuer = MockIssuer(max_age=60)
    cache = make_cache(issuer, clock)
    cache.refresh(force=True)
    assert not cache.refresh_due()
    clock.advance(59)
    cache.refresh_if_due()
    assert issuer.jwks_fetches == 1
    clock.advance(1)
    assert cache.refresh_due()
    cache.refresh_if_due()
    assert issuer.jwks_fetches == 2


def test_unknown_kid_flood_makes_at_most_one_fetch_per_interval(
    mock_issuer: MockIssuer, clock: FakeClock
) -> None:
    cache = make_cache(mock_issuer, clock, jwks_min_refetch_interval=10)
    cache.refresh(force=True)
    clock.advance(10)
    # Each forged-kid request reads the key set's generation before verifying.
    results = [cache.refresh_unknown_kid(cache.generation) for _ in range(1000)]
    # The first call fetched (a retry is worth it), the rest were refused.
    assert results[0] is True and not any(results[1:])
    assert mock_issuer.jwks_fetches == 2
    clock.advance(9.9)
    assert not cache.refresh_unknown_kid(cache.generation)
    clock.advance(0.1)
    assert cache.refresh_unknown_kid(cache.generation)
    assert mock_issuer.jwks_fetches == 3
    assert cache.health()["refetches_refused"] == 1000


def test_rotation_picked_up_on_unknown_kid(mock_issuer: MockIssuer, clock: FakeClock) -> None:
    cache = make_cache(mock_issuer, clock)
    cache.refresh(force=True)
    new = mock_issuer.state.add_key()
    assert cache.get(new.kid) is None
    clock.advance(10)
    assert cache.refresh_unknown_kid(cache.generation)
    assert cache.get(new.kid) is not None


def test_keeps_serving_cached_keys_when_the_issuer_is_down(
    mock_issuer: MockIssuer, clock: FakeClock
) -> None:
    cache = make_cache(mock_issuer, clock)
    cache.refresh(force=True)
    kid = mock_issuer.state.signing_key().kid
    mock_issuer.down = True
    clock.advance(3600)
    assert cache.refresh_due()
    assert not cache.refresh()
    assert cache.get(kid) is not None
    health = cache.health()
    assert health["failures"] == 1 and "ConnectError" in health["last_error"]
    # Failed fetches are rate-limited too.
    assert not cache.refresh_due()
    cache.refresh_if_due()
    assert cache.health()["failures"] == 1


def test_an_empty_jwks_does_not_wipe_the_keys(mock_issuer: MockIssuer, clock: FakeClock) -> None:
    cache = make_cache(mock_issuer, clock)
    cache.refresh(force=True)
    mock_issuer.jwks_override = {"keys": []}
    assert cache.refresh(force=True)
    assert len(cache.kids) == 1


@pytest.mark.parametrize("body", [[1, 2], {"nokeys": 1}, "text"], ids=["list", "no-keys", "string"])
def test_a_bad_jwks_is_a_failure(mock_issuer: MockIssuer, clock: FakeClock, body: Any) -> None:
    cache = make_cache(mock_issuer, clock)
    mock_issuer.jwks_override = body
    assert not cache.refresh(force=True)
    assert not cache.loaded
    assert cache.health()["last_error"]


def test_removed_keys_are_reported(mock_issuer: MockIssuer, clock: FakeClock) -> None:
    old = mock_issuer.state.signing_key()
    cache = make_cache(mock_issuer, clock)
    removed: list[frozenset[str]] = []
    cache.on_keys_removed(removed.append)
    cache.refresh(force=True)
    mock_issuer.state.add_key()
    mock_issuer.state.remove_key(old.kid)
    cache.refresh(force=True)
    assert removed == [frozenset({old.kid})]
    assert cache.get(old.kid) is None


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"issuer": "https://evil.test", "jwks_uri": f"{MOCK_ISSUER}/jwks"}, "not the configured"),
        ({"issuer": MOCK_ISSUER}, "no jwks_uri"),
        ({"issuer": MOCK_ISSUER, "jwks_uri": "http://evil.test/jwks"}, "plain http"),
        ({"issuer": MOCK_ISSUER, "jwks_uri": 5}, "not a string"),
    ],
    ids=["issuer-mismatch", "no-jwks-uri", "http-jwks-uri", "bad-type"],
)
def test_discovery_is_validated(clock: FakeClock, doc: dict[str, Any], fragment: str) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=doc))
    config = mock_config()
    discovery = Discovery(config, HttpClients(config, transport=transport), monotonic=clock)
    with pytest.raises(DiscoveryError, match=fragment):
        discovery.get()


def test_discovery_keeps_the_last_good_document(mock_issuer: MockIssuer, clock: FakeClock) -> None:
    config = mock_config()
    discovery = Discovery(
        config, HttpClients(config, transport=mock_issuer.transport), monotonic=clock, ttl=60
    )
    first = discovery.get()
    assert discovery.get() is first and discovery.fetches == 1
    mock_issuer.down = True
    clock.advance(61)
    assert discovery.get() is first
    assert discovery.fetches == 2


def test_oversized_document_is_refused(clock: FakeClock) -> None:
    big = b"{" + b" " * (1 << 20) + b"}"
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=big))
    config = mock_config()
    discovery = Discovery(config, HttpClients(config, transport=transport), monotonic=clock)
    with pytest.raises(DiscoveryError, match="larger"):
        discovery.get()


async def test_async_refresh_and_concurrent_unknown_kids_share_one_fetch(
    mock_issuer: MockIssuer, clock: FakeClock
) -> None:
    cache = make_cache(mock_issuer, clock)
    assert await cache.arefresh(force=True)
    new = mock_issuer.state.add_key()
    clock.advance(10)
    generation = cache.generation
    results = await asyncio.gather(*(cache.arefresh_unknown_kid(generation) for _ in range(50)))
    assert all(results)  # one fetched, the others waited for it and retry with its keys
    assert mock_issuer.jwks_fetches == 2
    assert cache.get(new.kid) is not None
    clock.advance(3600)
    await cache.arefresh_if_due()
    assert mock_issuer.jwks_fetches == 3
    await cache._http.aclose()


def test_an_hmac_secret_in_the_jwks_signs_nothing(
    mock_issuer: MockIssuer, mock_auth: ServiceAuth
) -> None:
    # The JWKS is public: a secret published there (by mistake or by an attacker who
    # controls the document) would let anyone mint tokens. The verifier ignores it.
    secret = Key.generate("HS256", kid="published-secret")
    genuine = mock_issuer.state.jwks()
    mock_issuer.jwks_override = {"keys": [*genuine["keys"], secret.to_jwk(private=True)]}
    assert mock_auth.keys.refresh(force=True)
    assert mock_auth.keys.get("published-secret") is None
    forged = mock_issuer.state.mint(key=secret)
    with pytest.raises(TokenRejected) as caught:
        mock_auth.verify(forged)
    assert caught.value.reason == "unknown_kid"
    assert mock_auth.verify(mock_issuer.state.mint()).subject == "user-1"
