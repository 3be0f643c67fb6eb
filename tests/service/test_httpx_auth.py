"""ClientCredentialsAuth: gets, caches, renews at 80% and retries once on 401."""

from __future__ import annotations

import asyncio
import base64
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from authmesh.errors import ConfigError
from authmesh.service import ClientCredentialsAuth, ServiceConfig, TokenRequestError
from authmesh.testing import FakeClock
from support.sdk import MOCK_ISSUER, mock_config


class TokenServer:
    """Discovery + token endpoint + a protected target, over MockTransport."""

    def __init__(self) -> None:
        self.issued: list[str] = []
        self.forms: list[dict[str, list[str]]] = []
        self.authorizations: list[str] = []
        self.rejected: set[str] = set()
        self.token_response: dict[str, Any] | None = None
        self.token_status = 200
        self.expires_in: Any = 100
        self.target_calls: list[str] = []
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": MOCK_ISSUER,
                    "jwks_uri": f"{MOCK_ISSUER}/jwks",
                    "token_endpoint": f"{MOCK_ISSUER}/oauth/token",
                },
            )
        if path == "/oauth/token":
            self.forms.append(parse_qs(request.content.decode()))
            self.authorizations.append(request.headers["authorization"])
            if self.token_response is not None:
                return httpx.Response(self.token_status, json=self.token_response)
            token = f"tok-{len(self.issued) + 1}"
            self.issued.append(token)
            body = {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}
            if self.expires_in is None:
                del body["expires_in"]
            return httpx.Response(200, json=body)
        # The protected target.
        auth = request.headers.get("authorization", "")
        self.target_calls.append(auth)
        if not auth.startswith("Bearer ") or auth[7:] in self.rejected:
            return httpx.Response(401)
        return httpx.Response(200, json={"token": auth[7:], "body": request.content.decode()})


@pytest.fixture
def server() -> TokenServer:
    return TokenServer()


def make_auth(server: TokenServer, clock: FakeClock, **kwargs: Any) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        mock_config(client_id="billing", client_secret="s:e%c"),
        transport=server.transport,
        async_transport=server.transport,
        monotonic=clock,
        **kwargs,
    )


def test_gets_caches_and_renews_at_80_percent(server: TokenServer, clock: FakeClock) -> None:
    auth = make_auth(server, clock, scope=["a", "b"], audience="orders")
    with httpx.Client(transport=server.transport, auth=auth) as client:
        assert client.get("https://svc/x").json()["token"] == "tok-1"
        clock.advance(79.9)
        assert client.get("https://svc/x").json()["token"] == "tok-1"
        clock.advance(0.1)
        assert client.get("https://svc/x").json()["token"] == "tok-2"
    assert auth.token_requests == 2
    form = server.forms[0]
    assert form == {"grant_type": ["client_credentials"], "scope": ["a b"], "audience": ["orders"]}
    raw = base64.b64decode(server.authorizations[0][6:]).decode()
    assert raw == "billing:s%3Ae%25c"  # RFC 6749 §2.3.1 encoding
    auth.close()


def test_a_401_renews_and_retries_once(server: TokenServer, clock: FakeClock) -> None:
    auth = make_auth(server, clock)
    with httpx.Client(transport=server.transport, auth=auth) as client:
        assert client.get("https://svc/x").status_code == 200
        server.rejected.add("tok-1")
        response = client.post("https://svc/x", content=b"payload")
        assert response.status_code == 200
        assert response.json() == {"token": "tok-2", "body": "payload"}  # body replayed
        server.rejected.update({"tok-2", "tok-3"})
        response = client.get("https://svc/x")
        assert response.status_code == 401  # retried once, not forever
        # ok, 401 + retry, 401 + retry (401): five calls, three tokens.
        assert len(server.target_calls) == 5 and auth.token_requests == 3
    auth.close()


def test_default_lifetime_when_expires_in_is_missing(server: TokenServer, clock: FakeClock) -> None:
    server.expires_in = None
    auth = make_auth(server, clock)
    with httpx.Client(transport=server.transport, auth=auth) as client:
        client.get("https://svc/x")
        clock.advance(239)
        client.get("https://svc/x")
        assert auth.token_requests == 1
        clock.advance(1)
        client.get("https://svc/x")
        assert auth.token_requests == 2
    auth.close()


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (401, {"error": "invalid_client", "error_description": "bad secret"}, "invalid_client"),
        (400, {"error": "invalid_scope"}, "invalid_scope"),
        (200, {"token_type": "Bearer"}, "no access_token"),
        (200, {"access_token": "t", "token_type": "mac"}, "not a bearer"),
    ],
    ids=["invalid-client", "invalid-scope", "no-token", "not-bearer"],
)
def test_token_errors(
    server: TokenServer, clock: FakeClock, status: int, body: dict[str, Any], match: str
) -> None:
    server.token_response, server.token_status = body, status
    auth = make_auth(server, clock)
    with httpx.Client(transport=server.transport, auth=auth) as client:
        with pytest.raises(TokenRequestError, match=match) as info:
            client.get("https://svc/x")
    if status != 200:
        assert info.value.error == body["error"] and info.value.status == status
    auth.close()


def test_explicit_token_endpoint_skips_discovery(server: TokenServer, clock: FakeClock) -> None:
    auth = make_auth(server, clock, token_endpoint=f"{MOCK_ISSUER}/oauth/token")
    with httpx.Client(transport=server.transport, auth=auth) as client:
        client.get("https://svc/x")
    assert server.forms and not any("openid" in c for c in server.target_calls)
    auth.close()


@pytest.mark.parametrize(
    ("config", "kwargs"),
    [
        (ServiceConfig(issuer=MOCK_ISSUER, audience="x"), {}),
        (mock_config(), {"renew_at": 0}),
        (mock_config(), {"token_endpoint": "http://evil.test/token"}),
    ],
    ids=["no-credentials", "renew-at", "insecure-endpoint"],
)
def test_config_errors(config: ServiceConfig, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ClientCredentialsAuth(config, **kwargs)


async def test_async_flow_shares_one_token(server: TokenServer, clock: FakeClock) -> None:
    auth = make_auth(server, clock)
    async with httpx.AsyncClient(transport=server.transport, auth=auth) as client:
        responses = await asyncio.gather(*(client.get("https://svc/x") for _ in range(20)))
        assert {r.json()["token"] for r in responses} == {"tok-1"}
        server.rejected.add("tok-1")
        response = await client.get("https://svc/x")
        assert response.json()["token"] == "tok-2"
    assert auth.token_requests == 2
    await auth.aclose()


def test_unreachable_token_endpoint(clock: FakeClock) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    transport = httpx.MockTransport(down)
    auth = ClientCredentialsAuth(mock_config(), transport=transport, monotonic=clock)
    with httpx.Client(transport=transport, auth=auth) as client:
        with pytest.raises(TokenRequestError, match="discovery"):
            client.get("https://svc/x")
    auth.close()
