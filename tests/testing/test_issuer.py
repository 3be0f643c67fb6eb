"""The kit's FakeIssuer speaks the real server's wire contract (docs/architecture.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from authmesh.jose import KeySet, VerifyPolicy, verify_jwt
from authmesh.service import ServiceAuth, TokenRevoked
from authmesh.testing import FakeIssuer, IssuerState, async_wait_for


@pytest.fixture
def feed_client(authmesh_issuer: FakeIssuer) -> Iterator[httpx.Client]:
    """An HTTP client authenticated as the service client ``orders``."""
    config = authmesh_issuer.service_config(audience="orders")
    assert config.client_id is not None and config.client_secret is not None
    auth = (config.client_id, config.client_secret)
    with httpx.Client(base_url=authmesh_issuer.url, auth=auth, timeout=5) as client:
        yield client


def sse_frames(client: httpx.Client, headers: dict[str, str], count: int) -> list[dict[str, str]]:
    """The first ``count`` frames with an ``event`` of the feed stream."""
    frames: list[dict[str, str]] = []
    with client.stream("GET", "/revocations/stream", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        frame: dict[str, str] = {}
        for line in response.iter_lines():
            if line:
                name, _, value = line.partition(": ")
                frame[name] = value
            elif "event" in frame:
                frames.append(frame)
                if len(frames) == count:
                    break
                frame = {}
            else:
                frame = {}
    return frames


def test_discovery_names_every_endpoint(authmesh_issuer: FakeIssuer) -> None:
    doc = httpx.get(f"{authmesh_issuer.url}/.well-known/openid-configuration").json()
    base = authmesh_issuer.url
    assert doc["issuer"] == base
    assert doc["jwks_uri"] == f"{base}/.well-known/jwks.json"
    assert doc["token_endpoint"] == f"{base}/oauth/token"
    assert doc["revocation_feed_endpoint"] == f"{base}/revocations"
    assert doc["revocation_feed_stream_endpoint"] == f"{base}/revocations/stream"


def test_jwks_is_public_and_cacheable(authmesh_issuer: FakeIssuer) -> None:
    response = httpx.get(f"{authmesh_issuer.url}/.well-known/jwks.json")
    assert response.headers["cache-control"] == "public, max-age=300"
    (key,) = response.json()["keys"]
    assert key["kid"] == authmesh_issuer.state.signing_kid
    assert "d" not in key


def test_minted_tokens_verify_against_the_published_keys(authmesh_issuer: FakeIssuer) -> None:
    token = authmesh_issuer.mint(
        sub="alice", roles=["clerk"], scope=["orders:read", "orders:write"], lifetime=60
    )
    keys = KeySet.from_jwks(httpx.get(f"{authmesh_issuer.url}/.well-known/jwks.json").json())
    policy = VerifyPolicy.for_access_tokens(issuer=authmesh_issuer.url, audience="orders")
    verified = verify_jwt(token, keys, policy)
    claims = verified.claims
    assert verified.header["typ"] == "at+jwt"
    assert (claims["sub"], claims["roles"], claims["aud"]) == ("alice", ["clerk"], "orders")
    assert claims["scope"] == "orders:read orders:write"
    assert claims["exp"] - claims["iat"] == 60
    assert claims["sid"] == "session-1"


def test_the_feed_needs_client_authentication(authmesh_issuer: FakeIssuer) -> None:
    for path in ("/revocations", "/revocations/stream"):
        response = httpx.get(f"{authmesh_issuer.url}{path}", auth=("orders", "wrong"))
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic ")
        assert response.json()["error"] == "invalid_client"


def test_published_events_are_paged_by_cursor(
    authmesh_issuer: FakeIssuer, feed_client: httpx.Client
) -> None:
    subject = authmesh_issuer.revoke_subject("alice")
    session = authmesh_issuer.revoke_session("s-1")
    token = authmesh_issuer.revoke_token("jti-1")
    page = feed_client.get("/revocations", params={"after": 0, "limit": 2}).json()
    assert [(e["kind"], e["value"]) for e in page["events"]] == [("sub", "alice"), ("sid", "s-1")]
    assert (page["next_cursor"], page["has_more"], page["latest_cursor"]) == (2, True, 3)
    rest = feed_client.get("/revocations", params={"after": page["next_cursor"]}).json()
    assert rest["events"] == [token.to_json()]
    assert [subject.cursor, session.cursor, token.cursor] == [1, 2, 3]


def test_the_stream_resumes_after_last_event_id_and_beats(
    authmesh_issuer: FakeIssuer, feed_client: httpx.Client
) -> None:
    for n in range(3):
        authmesh_issuer.revoke_token(f"jti-{n}")
    frames = sse_frames(feed_client, {"Last-Event-ID": "1"}, count=3)
    assert [(f["event"], f.get("id")) for f in frames] == [
        ("revocation", "2"),
        ("revocation", "3"),
        ("heartbeat", None),
    ]
    assert json.loads(frames[0]["data"])["value"] == "jti-1"
    assert json.loads(frames[2]["data"])["latest_cursor"] == 3
    assert authmesh_issuer.state.stream_cursors == [1]


def test_a_stopped_issuer_restarts_on_its_port_with_its_state() -> None:
    with FakeIssuer(IssuerState(heartbeat=0.05)) as issuer:
        port, kid = issuer.port, issuer.state.signing_kid
        issuer.stop()
        assert not issuer.running
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{issuer.url}/.well-known/jwks.json")
        issuer.revoke_subject("alice")
        issuer.start()
        assert (issuer.port, issuer.state.signing_kid) == (port, kid)
        assert issuer.state.latest_cursor() == 1


async def test_a_protected_service_refuses_a_revoked_session(authmesh_issuer: FakeIssuer) -> None:
    auth = ServiceAuth(authmesh_issuer.service_config(audience="orders"))
    await auth.astart()
    try:
        token = authmesh_issuer.mint(sub="carol", sid="s-9")
        assert (await auth.averify(token)).subject == "carol"

        async def refused() -> bool:
            try:
                await auth.averify(token)
            except TokenRevoked:
                return True
            return False

        authmesh_issuer.revoke_session("s-9")
        assert await async_wait_for(refused, timeout=2.0) < 1.0
    finally:
        await auth.astop()
