"""The kit's real auth server fixture: seeded, serving, and followed by a real service."""

from __future__ import annotations

import httpx

from authmesh.service import ServiceAuth, ServiceConfig
from authmesh.testing import async_wait_for
from authmesh.testing.authserver import AuthServerThread


async def test_authmesh_server_is_seeded_and_serves_tokens(
    authmesh_server: AuthServerThread,
) -> None:
    response = httpx.post(
        f"{authmesh_server.url}/oauth/token",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": "alice-password-1",
            "client_id": "web",
            "audience": "orders",
        },
    )
    assert response.status_code == 200, response.text
    config = ServiceConfig(
        issuer=authmesh_server.url,
        audience="orders",
        client_id="orders-svc",
        client_secret=authmesh_server.seeded["service_secret"],
    )
    auth = ServiceAuth(config)
    await auth.astart()
    try:
        principal = await auth.averify(response.json()["access_token"])
        assert principal.roles == frozenset({"user"})
        await async_wait_for(lambda: auth.health()["feed"]["connected"], timeout=10)
    finally:
        await auth.astop()
