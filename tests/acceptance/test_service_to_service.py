"""Service-to-service: ``ClientCredentialsAuth`` gets a token from the real auth
server, caches it, renews it before expiry, and the called services accept it.

Token requests are counted by the auth server's own ``/metrics``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from authmesh.service import ClientCredentialsAuth, ServiceConfig
from authmesh.testing import wait_for
from support.acceptance import FRAMEWORKS, Stack
from support.harness import claims_of


class Monotonic:
    """A monotonic clock that a test can move forward (renewal without waiting 8 minutes)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


@dataclass
class Caller:
    """A calling service registered at the auth server, and its outgoing auth."""

    client_id: str
    secret: str
    config: ServiceConfig


@pytest.fixture
def caller(stack: Stack) -> Iterator[Caller]:
    api = stack.issuer.api
    client_id = f"billing-{uuid.uuid4().hex[:8]}"
    response = api.admin(
        "POST",
        "/admin/clients",
        json={
            "client_id": client_id,
            "grant_types": ["client_credentials"],
            "scopes": ["orders:read", "orders:write"],
            "audiences": ["orders"],
            "roles": ["service"],
        },
    )
    assert response.status_code == 201, response.text
    secret = response.json()["client_secret"]
    config = ServiceConfig(
        issuer=api.url, audience="billing", client_id=client_id, client_secret=secret
    )
    yield Caller(client_id, secret, config)
    api.admin("DELETE", f"/admin/clients/{client_id}")


def _issued(stack: Stack) -> float:
    """client_credentials tokens the auth server has issued so far."""
    text = stack.issuer.api.http.get("/metrics").text
    line = 'authmesh_token_requests_total{grant_type="client_credentials",outcome="success"} '
    match = re.search("^" + re.escape(line) + r"(\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_client_credentials_are_cached_renewed_and_accepted(stack: Stack, caller: Caller) -> None:
    clock = Monotonic()
    auth = ClientCredentialsAuth(caller.config, audience="orders", monotonic=clock)
    before = _issued(stack)
    first = None
    for framework in FRAMEWORKS:
        service = stack.services[framework]
        with httpx.Client(base_url=service.url, auth=auth, timeout=5) as client:
            for _ in range(3):
                if framework == "graphql":
                    response = client.post("/graphql", json={"query": "{ me { sub roles } }"})
                    assert response.json()["data"]["me"] == {
                        "sub": caller.client_id,
                        "roles": ["service"],
                    }
                else:
                    response = client.post("/orders")
                    assert response.json() == {"created_by": caller.client_id}
                assert response.status_code == 200, response.text
                first = first or response.request.headers["authorization"]
                assert response.request.headers["authorization"] == first  # cached
    assert _issued(stack) - before == 1
    claims = claims_of(first.removeprefix("Bearer "))
    assert claims["client_id"] == caller.client_id and claims["aud"] in ("orders", ["orders"])
    lifetime = claims["exp"] - claims["iat"]

    service = stack.services["fastapi"]
    with httpx.Client(base_url=service.url, auth=auth, timeout=5) as client:
        clock.offset = 0.5 * lifetime  # not due yet
        assert client.get("/me").request.headers["authorization"] == first
        clock.offset = 0.85 * lifetime  # past renew_at (80%), still before expiry
        response = client.get("/me")
        assert response.status_code == 200
        renewed = response.request.headers["authorization"]
        assert renewed != first
        assert _issued(stack) - before == 2
    auth.close()


async def test_a_token_the_target_refuses_is_renewed_and_retried_once(
    stack: Stack, caller: Caller
) -> None:
    auth = ClientCredentialsAuth(caller.config, audience="orders", scope="orders:read")
    service = stack.services["flask"]
    async with httpx.AsyncClient(base_url=service.url, auth=auth, timeout=5) as client:
        response = await client.get("/me")
        assert response.status_code == 200
        assert response.json()["scopes"] == ["orders:read"]
        token = response.request.headers["authorization"].removeprefix("Bearer ")
        before = _issued(stack)

        # The caller's token is revoked (RFC 7009, by the caller itself).
        revoked = await client.post(
            f"{stack.issuer.url}/oauth/revoke",
            data={"token": token, "token_type_hint": "access_token"},
            auth=httpx.BasicAuth(caller.client_id, caller.secret),
        )
        assert revoked.status_code == 200, revoked.text
        wait_for(lambda: not service.accepts(token), timeout=1)

        response = await client.get("/me")

        assert response.status_code == 200
        assert [r.status_code for r in response.history] == [401]
        assert response.request.headers["authorization"] != f"Bearer {token}"
        assert _issued(stack) - before == 1
    await auth.aclose()
