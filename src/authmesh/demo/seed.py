"""First-start seeding of the demo: users, clients, and the credentials to print once."""

from __future__ import annotations

import secrets

from authmesh.server import accounts, clients
from authmesh.server.client_auth import TOKEN_EXCHANGE
from authmesh.server.context import RequestInfo, ServerContext

__all__ = ["DEMO_CLIENT", "WEBAPP_CLIENT", "move_webapp", "seed", "seed_webapp"]

DEMO_CLIENT = "demo-web"
WEBAPP_CLIENT = "demo-webapp"
_INFO = RequestInfo(actor="demo")


def _password() -> str:
    return "demo-" + secrets.token_urlsafe(9)


async def seed_webapp(ctx: ServerContext, webapp_url: str) -> dict[str, str]:
    """Register the web app: a confidential first-party client of the browser flow."""
    webapp = await clients.register_client(
        ctx,
        client_id=WEBAPP_CLIENT,
        name="Shop (the demo web app)",
        grant_types=["authorization_code", "refresh_token"],
        scopes=["orders:read", "orders:write", "catalog:read"],
        audiences=["orders", "catalog"],
        redirect_uris=[f"{webapp_url}/callback"],
        post_logout_redirect_uris=[f"{webapp_url}/"],
        info=_INFO,
    )
    assert webapp.secret is not None
    return {"WEBAPP_CLIENT_ID": WEBAPP_CLIENT, "WEBAPP_CLIENT_SECRET": webapp.secret}


async def move_webapp(ctx: ServerContext, webapp_url: str) -> None:
    """Point the web app's registered redirect URIs at where it listens now (a data
    folder seeded under another host name or port): they are matched exactly."""
    webapp = await clients.get_client(ctx, WEBAPP_CLIENT)
    await clients.update_client(
        ctx,
        WEBAPP_CLIENT,
        name=webapp.name,
        grant_types=webapp.grant_types,
        scopes=webapp.scopes,
        audiences=webapp.audiences,
        redirect_uris=[f"{webapp_url}/callback"],
        post_logout_redirect_uris=[f"{webapp_url}/"],
        first_party=webapp.first_party,
        info=_INFO,
    )


async def seed(ctx: ServerContext, webapp_url: str) -> dict[str, str]:
    """Create the demo users and clients; returns the credentials for ``demo.env``."""
    admin_pw, user_pw = _password(), _password()
    await accounts.create_user(
        ctx, username="admin", password=admin_pw, roles=["admin", "user"], info=_INFO
    )
    await accounts.create_user(
        ctx,
        username="alice",
        password=user_pw,
        roles=["user"],
        email="alice@example.com",
        info=_INFO,
    )
    await clients.register_client(
        ctx,
        client_id=DEMO_CLIENT,
        name="Demo command line (curl)",
        public=True,
        # The password grant only for the command-line walkthrough (RFC 9700 §2.4).
        grant_types=["password", "refresh_token"],
        scopes=["orders:read", "orders:write", "catalog:read", "catalog:write"],
        audiences=["orders", "catalog"],
        info=_INFO,
    )
    orders = await clients.register_client(
        ctx,
        client_id="orders-svc",
        name="Orders service",
        # Its own calls (client credentials), and calls for the user (token exchange).
        grant_types=["client_credentials", TOKEN_EXCHANGE],
        scopes=["catalog:read"],
        audiences=["catalog"],
        serves=["orders"],
        roles=["service"],
        info=_INFO,
    )
    catalog = await clients.register_client(
        ctx,
        client_id="catalog-svc",
        name="Catalog service",
        grant_types=["client_credentials"],
        scopes=[],
        audiences=[],
        roles=["service"],
        info=_INFO,
    )
    assert orders.secret is not None and catalog.secret is not None
    return {
        "DEMO_CLIENT_ID": DEMO_CLIENT,
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": admin_pw,
        "USER_USERNAME": "alice",
        "USER_PASSWORD": user_pw,
        "ORDERS_CLIENT_ID": "orders-svc",
        "ORDERS_CLIENT_SECRET": orders.secret,
        "CATALOG_CLIENT_ID": "catalog-svc",
        "CATALOG_CLIENT_SECRET": catalog.secret,
        **await seed_webapp(ctx, webapp_url),
    }
