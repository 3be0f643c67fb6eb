"""A user's own sessions, for the account page: listed by sign-in, ended one at a time.

A browser sign-in and the app sessions opened from it are one entry: ending it
ends them all, through the revocation feed, as a sign-out does. A user only
ever reads or ends sessions of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from authmesh.server import audit
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.feed import publish
from authmesh.store import sessions as session_store
from authmesh.store.models import SessionRow

__all__ = ["SessionView", "end_own_session", "list_own_sessions"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionView:
    """One sign-in of the user: where from, when, and which apps use it."""

    id: str
    client_id: str
    signed_in_at: float
    last_used_at: float
    client_ip: str | None
    user_agent: str | None
    browser: bool
    apps: list[str] = field(default_factory=list)
    current: bool = False


async def list_own_sessions(
    ctx: ServerContext, user_id: str, *, current_sid: str | None = None
) -> list[SessionView]:
    """The user's open sign-ins, newest first; ``current_sid`` (the console's own session,
    or its browser sign-in) is marked as this device."""
    async with ctx.db.transaction() as session:
        rows = await session_store.open_sessions(session, user_id, ctx.now())
    by_id = {row.id: row for row in rows}
    children: dict[str, list[SessionRow]] = {}
    tops: list[SessionRow] = []
    for row in rows:
        if row.parent_id is not None and row.parent_id in by_id:
            children.setdefault(row.parent_id, []).append(row)
        else:
            tops.append(row)
    views = []
    for row in tops:
        kids = children.get(row.id, [])
        views.append(
            SessionView(
                id=row.id,
                client_id=row.client_id,
                signed_in_at=row.auth_time,
                last_used_at=max([row.last_used_at, *(k.last_used_at for k in kids)]),
                client_ip=row.client_ip,
                user_agent=row.user_agent,
                browser=row.browser_secret_hash is not None,
                apps=sorted({k.client_id for k in kids}),
                current=current_sid is not None
                and (row.id == current_sid or any(k.id == current_sid for k in kids)),
            )
        )
    return sorted(views, key=lambda v: v.signed_in_at, reverse=True)


async def end_own_session(
    ctx: ServerContext, user_id: str, username: str, sid: str, *, info: RequestInfo
) -> bool:
    """End one of the user's sign-ins and the app sessions opened from it; their tokens are
    revoked through the feed. ``False`` when ``sid`` is not an open session of this user."""
    async with ctx.db.transaction() as session:
        row = await session_store.get_user_session(session, user_id, sid)
        cursors: list[int] = []
        ended = row is not None and row.ended_at is None
        if ended:
            sids = await session_store.end_browser_session(
                session, sid, now=ctx.now(), reason="logout"
            )
            cursors = await publish.revoke(ctx, session, "sid", sids)
            await audit.record(
                ctx,
                session,
                "logout",
                info=info,
                subject=username,
                session_id=sid,
                sessions=len(sids),
            )
    await publish.announce(ctx, cursors)
    return ended
