"""Signing in to the consoles: the authorization request they make, the callback's
exchange, and the console session a cookie names."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from authmesh.server.bearer import verify_access_token
from authmesh.server.client_auth import ClientCredentials
from authmesh.server.console.client import (
    CONSOLE_CLIENT_ID,
    callback_uri,
    ensure_console_client,
)
from authmesh.server.context import ServerContext
from authmesh.server.oidc.codes import authorization_code_grant
from authmesh.server.secrets import hash_secret, new_secret
from authmesh.store import console_sessions
from authmesh.store import sessions as session_store
from authmesh.store.console_sessions import ConsoleSignIn

__all__ = [
    "FRESH_SIGN_IN_SECONDS",
    "ConsoleSignIn",
    "PendingSignIn",
    "current_console_user",
    "finish_sign_in",
    "is_fresh",
    "safe_next",
    "start_sign_in",
]

#: Dangerous admin actions need a sign-in at most this old; else the admin signs in again.
FRESH_SIGN_IN_SECONDS = 300.0
_CONSOLE_PATHS = ("/account", "/admin")


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    """What the callback needs to finish a console sign-in (kept in a signed cookie)."""

    verifier: str
    state: str
    next: str

    def to_json(self) -> dict[str, Any]:
        """For the signed cookie."""
        return {"v": self.verifier, "s": self.state, "n": self.next}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PendingSignIn:
        """The inverse of :meth:`to_json` (from a cookie this server signed)."""
        return cls(str(data["v"]), str(data["s"]), safe_next(str(data["n"])))


def safe_next(path: str | None) -> str:
    """``path`` if it is a console page of this server, else the account page (no open
    redirect: only a local path under /account or /admin)."""
    if (
        path
        and path.startswith(_CONSOLE_PATHS)
        and "//" not in path
        and "\\" not in path
        and all(0x20 < ord(ch) < 0x7F for ch in path)
        and len(path) <= 500
    ):
        return path
    return "/account"


async def start_sign_in(
    ctx: ServerContext, next_path: str | None, *, again: bool = False
) -> tuple[PendingSignIn, str]:
    """A new console sign-in and the ``/authorize`` URL that starts it.

    ``again`` asks for the password even when the browser's sign-in is live
    (``prompt=login``): the re-authentication of a dangerous admin action.
    """
    await ensure_console_client(ctx)
    pending = PendingSignIn(
        verifier=secrets.token_urlsafe(48),
        state=secrets.token_urlsafe(24),
        next=safe_next(next_path),
    )
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(pending.verifier.encode()).digest())
        .rstrip(b"=")
        .decode()
    )
    params = {
        "response_type": "code",
        "client_id": CONSOLE_CLIENT_ID,
        "redirect_uri": callback_uri(ctx),
        "scope": "openid profile",
        "state": pending.state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if again:
        params["prompt"] = "login"
    return pending, f"/authorize?{urlencode(params)}"


async def finish_sign_in(
    ctx: ServerContext, pending: PendingSignIn, code: str, *, client_ip: str | None
) -> str:
    """Exchange the code like any public client, then name the session it opened by a
    new console cookie secret; returns that secret (the database keeps its hash).

    Raises:
        InvalidGrant: the code is bad, used, expired or not this sign-in's.
    """
    tokens = await authorization_code_grant(
        ctx,
        ClientCredentials(CONSOLE_CLIENT_ID, None, "none"),
        code=code,
        redirect_uri=callback_uri(ctx),
        code_verifier=pending.verifier,
        client_ip=client_ip,
    )
    # The console reads its session from the token like any service would.
    claims = await verify_access_token(ctx, tokens.access_token)
    secret = new_secret()
    async with ctx.db.transaction() as session:
        await session_store.attach_console_secret(
            session, str(claims["sid"]), hash_secret(secret), now=ctx.now()
        )
    return secret


async def current_console_user(ctx: ServerContext, cookie: str | None) -> ConsoleSignIn | None:
    """The live console session of a cookie, or ``None`` (no cookie, ended, blocked)."""
    if not cookie or len(cookie) > 100:
        return None
    async with ctx.db.transaction() as session:
        found = await console_sessions.load_console_sign_in(
            session, hash_secret(cookie), now=ctx.now()
        )
    if found is None or found.blocked:
        return None
    return found


def is_fresh(ctx: ServerContext, user: ConsoleSignIn) -> bool:
    """Whether the user signed in (typed the password) recently enough for a dangerous action."""
    return ctx.now() - user.auth_time <= FRESH_SIGN_IN_SECONDS
