"""End to end: the fake issuer and real FastAPI, Flask and Strawberry services on loopback ports."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from authmesh.jose import Key, sign_jwt
from authmesh.service import ClientCredentialsAuth, ServiceAuth, ServiceConfig
from authmesh.testing import FakeIssuer, UvicornThread, WerkzeugThread, wait_for
from support.apps import fastapi_app, flask_app, graphql_app
from support.sdk import live_config

log = logging.getLogger("authmesh.tests.integration")


class Service:
    """A running service: its base URL and its ServiceAuth."""

    def __init__(self, url: str, auth: ServiceAuth) -> None:
        self.url = url
        self.auth = auth
        self.http = httpx.Client(base_url=url, timeout=5)

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.get(path, headers=headers)

    def graphql(self, query: str, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.post("/graphql", json={"query": query}, headers=headers)

    def feed_connected(self) -> bool:
        return bool(self.auth.feed and self.auth.feed.connected)


@contextlib.contextmanager
def run_fastapi(config: ServiceConfig) -> Iterator[Service]:
    auth = ServiceAuth(config)
    with UvicornThread(fastapi_app(auth)) as server:
        service = Service(server.url, auth)
        yield service
        service.http.close()


@contextlib.contextmanager
def run_graphql(config: ServiceConfig) -> Iterator[Service]:
    auth = ServiceAuth(config)
    with UvicornThread(graphql_app(auth)) as server:
        service = Service(server.url, auth)
        yield service
        service.http.close()


@contextlib.contextmanager
def run_flask(config: ServiceConfig) -> Iterator[Service]:
    auth = ServiceAuth(config)
    app, ext = flask_app(auth)
    try:
        with WerkzeugThread(app) as server:
            service = Service(server.url, auth)
            yield service
            service.http.close()
    finally:
        ext.stop()


RUNNERS: dict[str, Callable[[ServiceConfig], contextlib.AbstractContextManager[Service]]] = {
    "fastapi": run_fastapi,
    "flask": run_flask,
}


@pytest.fixture
def fastapi_service(issuer: FakeIssuer, client_secret: str) -> Iterator[Service]:
    with run_fastapi(live_config(issuer, client_secret)) as service:
        yield service


@pytest.mark.parametrize("framework", sorted(RUNNERS))
def test_rest_service(issuer: FakeIssuer, client_secret: str, framework: str) -> None:
    with RUNNERS[framework](live_config(issuer, client_secret)) as service:
        token = issuer.state.mint(sub="alice", roles=["clerk"], scope="orders:read")
        response = service.get("/me", token)
        assert response.status_code == 200 and response.json()["sub"] == "alice"
        response = service.get("/me")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="orders"'
        response = service.get("/admin", token)
        assert response.status_code == 403
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
        response = service.http.post("/orders", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 403
        assert 'scope="orders:write"' in response.headers["www-authenticate"]
        response = service.get("/me", issuer.state.mint(audience="billing"))
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        health = service.get("/health").json()
        assert health["status"] in ("ok", "degraded") and health["jwks"]["loaded"]


@pytest.mark.parametrize("framework", sorted(RUNNERS))
def test_revocation_reaches_a_running_service_within_a_second(
    issuer: FakeIssuer, client_secret: str, framework: str, record_property: Any
) -> None:
    with RUNNERS[framework](live_config(issuer, client_secret)) as service:
        token = issuer.state.mint(sub="mallory", sid="s-stolen")
        assert service.get("/me", token).status_code == 200  # accepted, and now cached
        wait_for(service.feed_connected)
        started = time.monotonic()
        issuer.state.revoke("sid", "s-stolen")
        latency = wait_for(lambda: service.get("/me", token).status_code == 401, timeout=5)
        elapsed = time.monotonic() - started
        record_property("revocation_latency_ms", round(elapsed * 1000, 1))
        log.warning("%s: revocation effective after %.1f ms", framework, elapsed * 1000)
        print(f"\n{framework}: revocation effective after {elapsed * 1000:.1f} ms")
        assert latency < 1.0
        body = service.get("/me", token).json()
        assert body["error_description"] == "the session of this token has ended"
        assert service.get("/me", issuer.state.mint(sub="mallory", sid="s-new")).status_code == 200


def test_graphql_service(issuer: FakeIssuer, client_secret: str) -> None:
    with run_graphql(live_config(issuer, client_secret)) as service:
        clerk = issuer.state.mint(sub="frank", roles=["clerk"])
        assert service.graphql("{ me { sub } staffNote }", clerk).json() == {
            "data": {"me": {"sub": "frank"}, "staffNote": "staff only"}
        }
        body = service.graphql("{ adminReport }", clerk).json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        body = service.graphql("{ me { sub } }").json()
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        response = service.graphql("{ hello }", issuer.state.mint(lifetime=-3600))
        assert response.status_code == 401
        assert 'error_description="the token has expired"' in response.headers["www-authenticate"]
        wait_for(service.feed_connected)
        issuer.state.revoke("sub", "frank", not_before=time.time() + 1)
        wait_for(lambda: service.graphql("{ me { sub } }", clerk).status_code == 401, timeout=1)


def test_subscriber_catches_up_after_the_issuer_restarts(
    issuer: FakeIssuer, fastapi_service: Service
) -> None:
    service = fastapi_service
    tokens = {kind: issuer.state.mint(sub=f"u-{kind}", sid=f"s-{kind}") for kind in ("a", "b")}
    assert all(service.get("/me", t).status_code == 200 for t in tokens.values())
    wait_for(service.feed_connected)
    issuer.stop()
    wait_for(lambda: not service.feed_connected())
    issuer.state.revoke("sid", "s-a")  # written while the service is disconnected
    issuer.start()
    wait_for(lambda: service.get("/me", tokens["a"]).status_code == 401, timeout=5)
    assert service.get("/me", tokens["b"]).status_code == 200
    wait_for(service.feed_connected)
    issuer.state.revoke("sid", "s-b")
    wait_for(lambda: service.get("/me", tokens["b"]).status_code == 401, timeout=1)


def test_issuer_down_keeps_accepting_then_fails_closed(
    issuer: FakeIssuer, fastapi_service: Service
) -> None:
    service = fastapi_service
    cached = issuer.state.mint(sid="s1")
    assert service.get("/me", cached).status_code == 200
    wait_for(service.feed_connected)
    issuer.stop()
    down_at = time.monotonic()
    fresh = issuer.state.mint(sid="s2")  # never seen: verified with the cached JWKS
    assert service.get("/me", cached).status_code == 200
    assert service.get("/me", fresh).status_code == 200
    wait_for(lambda: service.get("/me", cached).status_code == 503, timeout=5)
    refused_after = time.monotonic() - down_at
    assert refused_after >= 1.0 - 0.3  # not before the staleness bound (1 s) …
    response = service.get("/me", fresh)
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    assert "revocation feed unreachable" in response.json()["error_description"]
    health = service.get("/health").json()
    assert health["status"] == "failing" and health["feed"]["stale"]
    issuer.start()  # … and recovers once the feed is back
    wait_for(lambda: service.get("/me", cached).status_code == 200, timeout=5)


def test_a_flood_of_unknown_kids_makes_at_most_one_jwks_fetch(
    issuer: FakeIssuer, fastapi_service: Service
) -> None:
    service = fastapi_service
    before = issuer.state.counters.jwks
    stranger = Key.generate("EdDSA")
    for _ in range(100):
        forged = Key.from_jwk({**stranger.to_jwk(private=True), "kid": uuid.uuid4().hex})
        token = sign_jwt({"iss": issuer.url, "sub": "x"}, forged, typ="at+jwt")
        response = service.get("/me", token)
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    # Default interval 10 s: the start-up fetch is recent, so not even one more fetch.
    assert issuer.state.counters.jwks - before <= 1
    assert service.auth.stats.jwks_refetches_refused >= 99


def test_key_rotation_is_picked_up_without_rejecting_a_valid_token(
    issuer: FakeIssuer, client_secret: str
) -> None:
    config = live_config(issuer, client_secret, jwks_min_refetch_interval=0.2)
    with run_fastapi(config) as service:
        old = issuer.state.mint(sid="s-old")
        assert service.get("/me", old).status_code == 200
        time.sleep(0.25)
        new_key = issuer.state.add_key("ES256")  # published in JWKS, now signing
        new = issuer.state.mint(sid="s-new")
        assert service.get("/me", new).status_code == 200
        assert new_key.kid in service.auth.keys.kids
        assert service.get("/me", old).status_code == 200


def test_client_credentials_auth_gets_renews_and_retries(
    issuer: FakeIssuer, fastapi_service: Service
) -> None:
    issuer.state.token_lifetime = 2
    secret = issuer.state.register_client("billing", scopes={"orders:read"}, audiences=["orders"])
    caller = ServiceConfig(
        issuer=issuer.url, audience="billing", client_id="billing", client_secret=secret
    )
    auth = ClientCredentialsAuth(caller, audience="orders", scope="orders:read")
    with httpx.Client(base_url=fastapi_service.url, auth=auth) as client:
        for _ in range(3):
            response = client.get("/me")
            assert response.status_code == 200 and response.json()["sub"] == "billing"
        assert issuer.state.counters.tokens == 1
        time.sleep(1.7)  # past 80% of the 2 s lifetime
        assert client.get("/me").status_code == 200
        assert issuer.state.counters.tokens == 2

        # The target refuses the current token: renewed once and retried.
        current = auth._token
        assert current is not None
        wait_for(fastapi_service.feed_connected)
        jti = fastapi_service.auth.verify(current).token_id
        issuer.state.revoke("jti", jti)
        wait_for(lambda: fastapi_service.get("/me", current).status_code == 401, timeout=1)
        response = client.get("/me")
        assert response.status_code == 200
        assert issuer.state.counters.tokens == 3
        assert len(response.history) == 1 and response.history[0].status_code == 401
    auth.close()


async def test_client_credentials_auth_async(issuer: FakeIssuer, fastapi_service: Service) -> None:
    secret = issuer.state.register_client("billing", audiences=["orders"])
    caller = ServiceConfig(
        issuer=issuer.url, audience="billing", client_id="billing", client_secret=secret
    )
    auth = ClientCredentialsAuth(caller, audience="orders")
    async with httpx.AsyncClient(base_url=fastapi_service.url, auth=auth) as client:
        responses = [await client.get("/me") for _ in range(3)]
        assert [r.status_code for r in responses] == [200, 200, 200]
    assert issuer.state.counters.tokens == 1
    await auth.aclose()
