"""Consent of a user to a third-party client: asked once, remembered, revocable."""

from __future__ import annotations

from dataclasses import dataclass

from authmesh.server import audit
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.feed import publish
from authmesh.store import consents as consent_store
from authmesh.store import sessions as session_store
from authmesh.store.models import ClientRow
from authmesh.store.rows import Statements

__all__ = ["Consent", "grant_consent", "list_consents", "needs_consent", "revoke_consent"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Consent:
    """Scopes a user let a client have, and when."""

    client_id: str
    scopes: list[str]
    granted_at: float


async def needs_consent(
    session: Statements, client: ClientRow, user_id: str, scopes: list[str], *, forced: bool
) -> bool:
    """Whether the user must be asked: always when ``forced`` (``prompt=consent``),
    never for a first-party client otherwise, else when a scope is not yet consented."""
    if forced:
        return True
    if client.first_party:
        return False
    consented = await consent_store.consented_scopes(session, user_id, client.client_id)
    return consented is None or not set(scopes) <= set(consented)


async def grant_consent(
    ctx: ServerContext,
    user_id: str,
    username: str,
    client_id: str,
    scopes: list[str],
    *,
    info: RequestInfo,
) -> None:
    """Remember that the user let the client have ``scopes``."""
    async with ctx.db.transaction() as session:
        await consent_store.save_consent(session, user_id, client_id, scopes, now=ctx.now())
        await audit.record(
            ctx,
            session,
            "consent_grant",
            info=info,
            subject=username,
            client_id=client_id,
            scopes=sorted(scopes),
        )


async def list_consents(ctx: ServerContext, user_id: str) -> list[Consent]:
    """The user's consents, by client."""
    async with ctx.db.transaction() as session:
        rows = await consent_store.list_consents(session, user_id)
    return [
        Consent(client_id=r.client_id, scopes=list(r.scopes), granted_at=r.granted_at) for r in rows
    ]


async def revoke_consent(
    ctx: ServerContext, user_id: str, username: str, client_id: str, *, info: RequestInfo
) -> bool:
    """Withdraw a consent and end the client's sessions of this user; whether there was one."""
    async with ctx.db.transaction() as session:
        existed = await consent_store.delete_consent(session, user_id, client_id)
        cursors: list[int] = []
        if existed:
            sids = await session_store.end_client_sessions(
                session, user_id, client_id, now=ctx.now(), reason="consent_revoked"
            )
            cursors = await publish.revoke(ctx, session, "sid", sids, reason="consent_revoked")
            await audit.record(
                ctx,
                session,
                "consent_revoke",
                info=info,
                subject=username,
                client_id=client_id,
                sessions=len(sids),
            )
    await publish.announce(ctx, cursors)
    return existed
