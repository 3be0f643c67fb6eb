"""The consoles' own client registration: ``authmesh-console``, ensured before each sign-in."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from authmesh.server import audit
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.store import clients as client_store

__all__ = ["CONSOLE_CLIENT_ID", "callback_uri", "ensure_console_client"]

CONSOLE_CLIENT_ID = "authmesh-console"
_NAME = "authmesh consoles (account page, admin console)"
_SCOPES = ["openid", "profile"]


def callback_uri(ctx: ServerContext) -> str:
    """Where the authorization endpoint sends the consoles' codes: this server."""
    return f"{ctx.issuer.issuer.rstrip('/')}/console/callback"


async def ensure_console_client(ctx: ServerContext) -> None:
    """Register the consoles' public first-party client, or put back its redirect URI.

    Checked on every console sign-in (not at start-up), so an admin who deletes
    it, or an issuer URL that changed, costs one extra write and nothing breaks.
    """
    redirect = callback_uri(ctx)
    async with ctx.db.transaction() as session:
        row = await client_store.get_client(session, CONSOLE_CLIENT_ID)
        if row is not None and row.redirect_uris == [redirect] and row.secret_hash is None:
            return
    try:
        async with ctx.db.transaction() as session:
            if row is not None:
                await client_store.delete_client(session, CONSOLE_CLIENT_ID)
            await client_store.create_client(
                session,
                client_id=CONSOLE_CLIENT_ID,
                name=_NAME,
                secret_hash=None,
                grant_types=["authorization_code"],
                scopes=_SCOPES,
                audiences=[],
                roles=[],
                now=ctx.now(),
                redirect_uris=[redirect],
                first_party=True,
            )
            await audit.record(
                ctx,
                session,
                "client_create",
                info=RequestInfo(actor="authmesh"),
                subject=CONSOLE_CLIENT_ID,
                client_id=CONSOLE_CLIENT_ID,
            )
    except IntegrityError:
        pass  # another request registered it at the same moment
