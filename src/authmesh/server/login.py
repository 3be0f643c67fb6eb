"""Checking a username and password, shared by the password grant and the sign-in page.

Both paths get the same brute-force limits, lockout, timing and audit trail,
and the same answer for an unknown user, a wrong password and a blocked account.
"""

from __future__ import annotations

from dataclasses import dataclass

from authmesh.server import audit
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.errors import InvalidGrant
from authmesh.store.models import UserRow

__all__ = ["BAD_LOGIN", "MUST_CHANGE", "VerifiedLogin", "verify_login"]

BAD_LOGIN = "invalid username or password"
MUST_CHANGE = "the password was reset: sign in through the browser to choose a new one"


@dataclass(frozen=True, slots=True)
class VerifiedLogin:
    """A user whose password checked out, and a stronger hash to store if the costs rose."""

    user: UserRow
    new_hash: str | None


async def verify_login(
    ctx: ServerContext,
    user: UserRow | None,
    username: str,
    password: str,
    *,
    info: RequestInfo,
    client_id: str,
    password_reset_ok: bool = False,
) -> VerifiedLogin:
    """Check a password for ``user`` (read by the caller).

    A password an admin reset opens no session: only the browser sign-in, which
    asks for a new one (``password_reset_ok``), accepts it.

    Raises:
        RateLimited: too many recent failures for this account or address.
        InvalidGrant: unknown user, wrong password or blocked account, all alike;
            or a right password that must be changed first.
    """
    await ctx.guard.before_login(username, info.client_ip)
    if user is None:
        # Same Argon2 work as a real check, so timing does not tell who exists.
        await ctx.hasher.averify_dummy(password)
        await _login_failed(ctx, info, username, client_id, "unknown_user")
        raise InvalidGrant(BAD_LOGIN)
    ok = await ctx.hasher.averify(user.password_hash, password)
    if not ok or user.blocked:
        reason = "blocked" if ok else "bad_password"
        await _login_failed(ctx, info, username, client_id, reason)
        raise InvalidGrant(BAD_LOGIN)
    await ctx.guard.succeeded(username)
    if user.must_change_password and not password_reset_ok:
        raise InvalidGrant(MUST_CHANGE)
    new_hash = None
    if ctx.hasher.needs_rehash(user.password_hash):
        new_hash = await ctx.hasher.ahash(password)
    return VerifiedLogin(user, new_hash)


async def _login_failed(
    ctx: ServerContext, info: RequestInfo, username: str, client_id: str, reason: str
) -> None:
    locked = await ctx.guard.failed(username, info.client_ip)
    async with ctx.db.transaction() as session:
        await audit.record(
            ctx,
            session,
            "login",
            outcome="failure",
            info=info,
            subject=username[:150],
            client_id=client_id,
            reason=reason,
        )
        if locked:
            await audit.record(
                ctx, session, "lockout", outcome="locked", info=info, subject=username[:150]
            )
