"""Browser sign-ins (single sign-on): a server-side session named by an HttpOnly cookie.

The cookie carries a random secret; the database keeps only its hash, so
neither a database read nor a token (whose ``sid`` is public) gives a cookie.
Block, password change, forced logout and logout-everywhere end every session
of the user, browser sign-ins included, so the cookie stops working with them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.server import audit
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.feed import publish
from authmesh.server.secrets import hash_secret, new_secret
from authmesh.store import browser_sign_ins as sign_in_store
from authmesh.store import clients as client_store
from authmesh.store import sessions as session_store
from authmesh.store import users as user_store
from authmesh.store.browser_sign_ins import BrowserSignIn
from authmesh.store.models import ClientRow, UserRow
from authmesh.store.rows import Statements

__all__ = [
    "BrowserSession",
    "SignedIn",
    "current_browser_session",
    "find_browser_session",
    "find_client_and_browser_session",
    "open_sign_in",
    "read_sign_in",
    "sign_out",
]


_T = TypeVar("_T")


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


async def read_sign_in(
    ctx: ServerContext, client_id: str, username: str
) -> tuple[ClientRow | None, UserRow | None, bool]:
    """The client a sign-in form continues, the user it names and whether that user has a
    second factor, in one statement.

    No user is looked up for an unknown client: the form is refused before any
    password is checked.
    """
    async with ctx.db.autocommit(short=True) as session:  # one read: no transaction around it
        return await sign_in_store.load_client_and_user(session, client_id, username)


async def open_sign_in(
    ctx: ServerContext,
    found: UserRow,
    *,
    amr: Sequence[str],
    client_id: str,
    info: RequestInfo,
    then: Callable[[AsyncSession, BrowserSession], Awaitable[_T]],
    new_hash: str | None = None,
) -> tuple[SignedIn, _T]:
    """Open a browser session for a user who passed every step (``amr`` says which), and
    run ``then`` in its transaction (see :func:`sign_in`)."""
    secret = new_secret()
    now = ctx.now()
    async with ctx.db.transaction(short=True) as session:
        if new_hash is not None:
            row = await user_store.get_user_by_id(session, found.id, for_update=True)
            if row is not None:
                row.password_hash = new_hash
        opened = await session_store.create_session(
            session,
            user_id=found.id,
            client_id=client_id,
            scope="",
            audiences=[],
            now=now,
            expires_at=now + ctx.settings.browser_session_ttl,
            browser_secret_hash=hash_secret(secret),
            amr=list(amr),
            client_ip=info.client_ip,
            user_agent=info.user_agent,
        )
        await audit.record(
            ctx,
            session,
            "login",
            info=info,
            subject=found.username,
            client_id=client_id,
            session_id=opened.id,
            method="browser",
            amr=list(amr),
        )
        browser = BrowserSession(
            id=opened.id, user_id=found.id, username=found.username, auth_time=now, amr=tuple(amr)
        )
        after = await then(session, browser)
    return SignedIn(browser, secret), after


async def current_browser_session(ctx: ServerContext, cookie: str | None) -> BrowserSession | None:
    """The live browser session the cookie names, or ``None`` (ended, expired, blocked)."""
    if not cookie:
        return None
    async with ctx.db.autocommit(short=True) as session:  # one read: no transaction around it
        return await find_browser_session(session, ctx, cookie)


async def find_browser_session(
    session: Statements, ctx: ServerContext, cookie: str | None
) -> BrowserSession | None:
    """:func:`current_browser_session` inside the caller's transaction."""
    secret_hash = _secret_hash(cookie)
    if secret_hash is None:
        return None
    return _live(await sign_in_store.load_browser_sign_in(session, secret_hash, now=ctx.now()))


async def find_client_and_browser_session(
    session: Statements, ctx: ServerContext, client_id: str, cookie: str | None
) -> tuple[ClientRow | None, BrowserSession | None]:
    """The client and the cookie's live browser sign-in, in one statement when there is
    a cookie (the authorization endpoint's read); ``None`` for either."""
    secret_hash = _secret_hash(cookie)
    if secret_hash is None:
        return await client_store.get_client(session, client_id), None
    client, row = await sign_in_store.load_client_and_sign_in(
        session, client_id, secret_hash, now=ctx.now()
    )
    return client, _live(row)


def _secret_hash(cookie: str | None) -> str | None:
    """The stored hash of a cookie's secret; ``None`` for no cookie or a forged long one."""
    if not cookie or len(cookie) > 100:
        return None
    return hash_secret(cookie)


def _live(row: BrowserSignIn | None) -> BrowserSession | None:
    if row is None or row.blocked:
        return None
    return BrowserSession(
        id=row.id,
        user_id=row.user_id,
        username=row.username,
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
        cursors = await publish.revoke(ctx, session, "sid", sids, reason="logout")
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
