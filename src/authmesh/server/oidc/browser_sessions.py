"""Browser sign-ins (single sign-on): a server-side session named by an HttpOnly cookie.

The cookie carries a random secret; the database keeps only its hash, so
neither a database read nor a token (whose ``sid`` is public) gives a cookie.
Block, password change, forced logout and logout-everywhere end every session
of the user, browser sign-ins included, so the cookie stops working with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.server import audit
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.feed import publish
from authmesh.server.login import verify_login
from authmesh.server.secrets import hash_secret, new_secret
from authmesh.store import sessions as session_store
from authmesh.store import users as user_store

__all__ = [
    "BrowserSession",
    "SignedIn",
    "current_browser_session",
    "find_browser_session",
    "sign_in",
    "sign_out",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class BrowserSession:
    """A live browser sign-in."""

    id: str
    user_id: str
    username: str
    auth_time: float
    amr: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new browser sign-in and the secret its cookie carries (shown this once)."""

    session: BrowserSession
    cookie_secret: str


async def sign_in(
    ctx: ServerContext, username: str, password: str, *, client_id: str, info: RequestInfo
) -> SignedIn:
    """Check the password and open a browser session.

    Raises:
        RateLimited: too many recent failures for this account or address.
        InvalidGrant: unknown user, wrong password or blocked account, all alike.
    """
    async with ctx.db.transaction() as session:
        user, _roles = await user_store.get_user_and_roles(session, username)
    verified = await verify_login(ctx, user, username, password, info=info, client_id=client_id)
    user = verified.user
    secret = new_secret()
    now = ctx.now()
    async with ctx.db.transaction() as session:
        if verified.new_hash is not None:
            row = await user_store.get_user_by_id(session, user.id, for_update=True)
            if row is not None:
                row.password_hash = verified.new_hash
        opened = await session_store.create_session(
            session,
            user_id=user.id,
            client_id=client_id,
            scope="",
            audiences=[],
            now=now,
            expires_at=now + ctx.settings.browser_session_ttl,
            browser_secret_hash=hash_secret(secret),
            amr=["pwd"],
        )
        await audit.record(
            ctx,
            session,
            "login",
            info=info,
            subject=user.username,
            client_id=client_id,
            session_id=opened.id,
            method="browser",
        )
    browser = BrowserSession(
        id=opened.id, user_id=user.id, username=user.username, auth_time=now, amr=("pwd",)
    )
    return SignedIn(browser, secret)


async def current_browser_session(ctx: ServerContext, cookie: str | None) -> BrowserSession | None:
    """The live browser session the cookie names, or ``None`` (ended, expired, blocked)."""
    if not cookie:
        return None
    async with ctx.db.transaction() as session:
        return await find_browser_session(session, ctx, cookie)


async def find_browser_session(
    session: AsyncSession, ctx: ServerContext, cookie: str | None
) -> BrowserSession | None:
    """:func:`current_browser_session` inside the caller's transaction."""
    if not cookie or len(cookie) > 100:
        return None
    row = await session_store.get_browser_session(session, hash_secret(cookie), now=ctx.now())
    if row is None:
        return None
    user = await user_store.get_user_by_id(session, row.user_id)
    if user is None or user.blocked:
        return None
    return BrowserSession(
        id=row.id,
        user_id=user.id,
        username=user.username,
        auth_time=row.auth_time,
        amr=tuple(row.amr or ("pwd",)),
    )


async def sign_out(
    ctx: ServerContext, browser: BrowserSession, *, info: RequestInfo, client_id: str | None = None
) -> list[str]:
    """End a browser sign-in and every session opened from it; their tokens are revoked."""
    async with ctx.db.transaction() as session:
        sids = await session_store.end_browser_session(
            session, browser.id, now=ctx.now(), reason="logout"
        )
        cursors = await publish.revoke(ctx, session, "sid", sids)
        if sids:
            await audit.record(
                ctx,
                session,
                "logout",
                info=info,
                subject=browser.username,
                client_id=client_id,
                session_id=browser.id,
                sessions=len(sids),
            )
    await publish.announce(ctx, cursors)
    return sids
