"""User accounts: creation, roles, block, passwords and logouts, free of HTTP.

Every change that ends access writes revocation events and an audit event in
the same transaction, then wakes the feed after the commit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.server import audit
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.errors import AccessDenied, InvalidRequest, NotFound, WeakPassword
from authmesh.server.feed import publish
from authmesh.server.login_limits import TemporarilyUnavailable
from authmesh.server.ssf.events import RevocationReason, account_enabled_signal
from authmesh.server.ssf.outbox import announce_signals
from authmesh.store import sessions as session_store
from authmesh.store import users as user_store
from authmesh.store.models import UserRow

__all__ = [
    "UserView",
    "block_user",
    "change_password",
    "create_user",
    "get_user",
    "list_users",
    "logout",
    "logout_all",
    "search_users",
    "set_password",
    "set_roles",
    "unblock_user",
    "unlock_user",
]

log = logging.getLogger(__name__)

_USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{1,150}$")
_EMAIL = re.compile(r"^(?=.{3,254}$)[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+\.[^@\s\x00-\x1f]+$")
_ROLE = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class UserView:
    """A user as the admin API and CLI show it (never the password hash)."""

    id: str
    username: str
    roles: list[str]
    blocked: bool
    created_at: float
    email: str | None = None
    must_change_password: bool = False

    def to_json(self) -> dict[str, object]:
        """The JSON object of the admin API."""
        return {
            "id": self.id,
            "username": self.username,
            "roles": self.roles,
            "blocked": self.blocked,
            "created_at": self.created_at,
        }


def _view(user: UserRow, roles: list[str]) -> UserView:
    return UserView(
        id=user.id,
        username=user.username,
        roles=roles,
        blocked=user.blocked,
        created_at=user.created_at,
        email=user.email,
        must_change_password=bool(user.must_change_password),
    )


def _check_roles(roles: Sequence[str]) -> list[str]:
    for role in roles:
        if not _ROLE.match(role):
            raise InvalidRequest(f"invalid role name {role[:100]!r}")
    return sorted(set(roles))


def _check_password(ctx: ServerContext, password: str, username: str) -> None:
    try:
        ctx.policy.check(password, username)
    except WeakPassword as exc:
        raise InvalidRequest(str(exc)) from None


async def create_user(
    ctx: ServerContext,
    *,
    username: str,
    password: str,
    roles: Sequence[str] = (),
    email: str | None = None,
    info: RequestInfo | None = None,
) -> UserView:
    """Create a user (``email`` is released to apps granted the ``email`` scope).

    Raises:
        InvalidRequest: bad username, weak password, bad role, bad email, or the
            name is taken.
    """
    if not _USERNAME.match(username):
        raise InvalidRequest("username must be 1-150 of A-Z a-z 0-9 . _ @ + -")
    if email is not None and not _EMAIL.match(email):
        raise InvalidRequest("email must look like name@example.com (at most 254 characters)")
    _check_password(ctx, password, username)
    wanted = _check_roles(roles)
    password_hash = await ctx.hasher.ahash(password)
    try:
        async with ctx.db.transaction() as session:
            if await user_store.get_user(session, username) is not None:
                raise InvalidRequest(f"user {username!r} already exists")
            user = await user_store.create_user(
                session,
                username=username,
                password_hash=password_hash,
                roles=wanted,
                now=ctx.now(),
                email=email,
            )
            await audit.record(
                ctx, session, "user_create", info=info, subject=user.username, roles=wanted
            )
    except IntegrityError:
        raise InvalidRequest(f"user {username!r} already exists") from None
    return _view(user, wanted)


async def _load(session: AsyncSession, username: str) -> UserRow:
    user = await user_store.get_user(session, username, for_update=True)
    if user is None:
        raise NotFound(f"no user {username[:150]!r}")
    return user


async def get_user(ctx: ServerContext, username: str) -> UserView:
    """One user by name.

    Raises:
        NotFound: no such user.
    """
    async with ctx.db.transaction() as session:
        user = await _load(session, username)
        return _view(user, await user_store.get_roles(session, user.id))


async def list_users(ctx: ServerContext, *, offset: int = 0, limit: int = 100) -> list[UserView]:
    """Users ordered by name."""
    async with ctx.db.transaction() as session:
        rows = await user_store.list_users(session, offset=offset, limit=limit)
        return [_view(u, await user_store.get_roles(session, u.id)) for u in rows]


async def search_users(
    ctx: ServerContext, query: str = "", *, offset: int = 0, limit: int = 20
) -> tuple[list[UserView], int]:
    """Users whose name or email contains ``query`` (any case), by name; and how many match."""
    async with ctx.db.transaction() as session:
        rows, total = await user_store.search_users(
            session, query.strip()[:150], offset=offset, limit=limit
        )
        roles = await user_store.get_roles_of(session, [u.id for u in rows])
        return [_view(u, roles.get(u.id, [])) for u in rows], total


async def _end_access(
    ctx: ServerContext,
    session: AsyncSession,
    user: UserRow,
    reason: str,
    signal: RevocationReason,
) -> list[int]:
    """End every session and revoke every token of the user issued until now."""
    sids = await session_store.end_user_sessions(session, user.id, now=ctx.now(), reason=reason)
    cursors = await publish.revoke(ctx, session, "sub", [user.id], reason=signal)
    cursors += await publish.revoke(ctx, session, "sid", sids, reason=signal)
    return cursors


async def set_roles(
    ctx: ServerContext, username: str, roles: Sequence[str], *, info: RequestInfo | None = None
) -> UserView:
    """Replace a user's roles.

    Roles taken away are revoked at once: outstanding tokens carry the old roles,
    so the user's tokens are revoked and the next refresh carries the new ones.
    """
    wanted = _check_roles(roles)
    async with ctx.db.transaction() as session:
        user = await _load(session, username)
        before = await user_store.get_roles(session, user.id)
        await user_store.set_roles(session, user.id, wanted)
        cursors: list[int] = []
        if set(before) - set(wanted):
            # No sid event backs this one up: it must also cover tokens minted
            # earlier in this second, which still carry the role taken away.
            cursors = await publish.revoke(
                ctx, session, "sub", [user.id], through_this_second=True, reason="role_change"
            )
        await audit.record(
            ctx,
            session,
            "role_change",
            info=info,
            subject=user.username,
            before=before,
            after=wanted,
        )
    await publish.announce(ctx, cursors)
    return _view(user, wanted)


async def block_user(
    ctx: ServerContext, username: str, *, info: RequestInfo | None = None
) -> UserView:
    """Block a user: no login, no refresh, every token revoked within the feed's latency."""
    async with ctx.db.transaction() as session:
        user = await _load(session, username)
        user.blocked = True
        user.updated_at = ctx.now()
        cursors = await _end_access(ctx, session, user, "blocked", "block")
        await audit.record(ctx, session, "block", info=info, subject=user.username)
        roles = await user_store.get_roles(session, user.id)
    await publish.announce(ctx, cursors)
    return _view(user, roles)


async def unblock_user(
    ctx: ServerContext, username: str, *, info: RequestInfo | None = None
) -> UserView:
    """Let a blocked user log in again (old tokens stay revoked)."""
    async with ctx.db.transaction() as session:
        user = await _load(session, username)
        user.blocked = False
        user.updated_at = ctx.now()
        await announce_signals(
            ctx, session, [account_enabled_signal(ctx.issuer.issuer, user.id, timestamp=ctx.now())]
        )
        await audit.record(ctx, session, "unblock", info=info, subject=user.username)
        roles = await user_store.get_roles(session, user.id)
    # Unblocking also lifts a brute-force lock: the admin vouches for the account.
    # The unblock is committed: a Redis outage only leaves the lock to expire
    # (or to a later unlock), it does not turn the answer into a failure.
    try:
        await ctx.guard.unlock(user.username)
    except TemporarilyUnavailable:
        log.warning("account unblocked, but its sign-in lock could not be lifted: Redis is down")
    return _view(user, roles)


async def unlock_user(
    ctx: ServerContext, username: str, *, info: RequestInfo | None = None
) -> UserView:
    """Lift a brute-force lock: clear the account's failed-login back-off and lock.

    Raises:
        NotFound: no such user.
    """
    view = await get_user(ctx, username)
    await ctx.guard.unlock(view.username)
    async with ctx.db.transaction() as session:
        await audit.record(ctx, session, "unlock", info=info, subject=view.username)
    return view


async def logout_all(
    ctx: ServerContext, username: str, *, info: RequestInfo | None = None, forced: bool = False
) -> int:
    """End every session of the user (logout everywhere, or an admin's forced re-auth)."""
    async with ctx.db.transaction() as session:
        user = await _load(session, username)
        open_count = len(await session_store.open_sessions(session, user.id, ctx.now()))
        cursors = await _end_access(
            ctx,
            session,
            user,
            "forced_logout" if forced else "logout",
            "force_logout" if forced else "logout_all",
        )
        await audit.record(
            ctx,
            session,
            "force_logout" if forced else "logout_all",
            info=info,
            subject=user.username,
            sessions=open_count,
        )
    await publish.announce(ctx, cursors)
    return open_count


async def logout(
    ctx: ServerContext, user_id: str, sid: str, *, info: RequestInfo | None = None
) -> None:
    """End one session of the user and revoke its tokens."""
    async with ctx.db.transaction() as session:
        sess = await session_store.get_session(session, sid)
        cursors: list[int] = []
        if sess is not None and sess.user_id == user_id:
            await session_store.end_session(session, sid, now=ctx.now(), reason="logout")
            cursors = await publish.revoke(ctx, session, "sid", [sid], reason="logout")
            user = await user_store.get_user_by_id(session, user_id)
            await audit.record(
                ctx,
                session,
                "logout",
                info=info,
                subject=user.username if user else user_id,
                session_id=sid,
            )
    await publish.announce(ctx, cursors)


async def change_password(
    ctx: ServerContext,
    user_id: str,
    *,
    current_password: str,
    new_password: str,
    info: RequestInfo | None = None,
) -> None:
    """The user changes their own password: every session ends, every token is revoked.

    Raises:
        AccessDenied: the current password is wrong.
        InvalidRequest: the new password breaks the policy.
    """
    async with ctx.db.transaction() as session:
        user = await user_store.get_user_by_id(session, user_id)
    if user is None or user.blocked:
        raise AccessDenied("the account cannot change its password")
    await ctx.guard.before_login(user.username, info.client_ip if info else None)
    if not await ctx.hasher.averify(user.password_hash, current_password):
        await ctx.guard.failed(user.username, info.client_ip if info else None)
        async with ctx.db.transaction() as session:
            await audit.record(
                ctx, session, "password_change", outcome="failure", info=info, subject=user.username
            )
        raise AccessDenied("the current password is wrong")
    await set_password(ctx, user.username, new_password, info=info, by_admin=False)


async def set_password(
    ctx: ServerContext,
    username: str,
    new_password: str,
    *,
    info: RequestInfo | None = None,
    by_admin: bool = True,
    must_change: bool = False,
) -> None:
    """Set a password (admin or CLI, or the user after checking the old one).

    With ``must_change`` (an admin's reset) the user must choose a new password at
    their next browser sign-in; any other change clears that.
    """
    _check_password(ctx, new_password, username)
    new_hash = await ctx.hasher.ahash(new_password)
    async with ctx.db.transaction() as session:
        user = await _load(session, username)
        user.password_hash = new_hash
        user.password_changed_at = user.updated_at = ctx.now()
        user.must_change_password = must_change
        cursors = await _end_access(ctx, session, user, "password_change", "password_change")
        await audit.record(
            ctx,
            session,
            "password_change",
            info=info,
            subject=user.username,
            by_admin=by_admin,
            must_change=must_change,
        )
    await publish.announce(ctx, cursors)
