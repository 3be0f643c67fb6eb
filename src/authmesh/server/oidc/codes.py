"""Authorization codes: issued at the authorization endpoint, exchanged at the token endpoint.

A code lives at most a minute, works once, and is bound to its client, its
redirect URI and its PKCE challenge. A code presented twice ends the session
its first exchange opened, through the revocation feed (RFC 6749 §4.1.2): the
second presenter may be the thief, or the first one was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.server import audit
from authmesh.server.client_auth import (
    ClientCredentials,
    check_client_credentials,
    check_dpop_requirement,
    check_grant_type,
)
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.errors import InvalidGrant, InvalidRequest
from authmesh.server.feed import publish
from authmesh.server.grants import TokenResponse, public_client_binding
from authmesh.server.oidc.authorization import AuthorizationRequest
from authmesh.server.oidc.browser_sessions import BrowserSession
from authmesh.server.oidc.id_tokens import mint_id_token
from authmesh.server.oidc.pkce import verifier_matches
from authmesh.server.secrets import hash_secret, new_secret
from authmesh.store import codes as code_store
from authmesh.store import sessions as session_store
from authmesh.store.codes import Exchange
from authmesh.store.models import ClientRow, SessionRow, UserRow
from authmesh.store.rows import Statements, detached

__all__ = ["authorization_code_grant", "issue_code"]

_BAD_CODE = "the authorization code is invalid, expired or already used"


async def issue_code(
    session: Statements,
    ctx: ServerContext,
    request: AuthorizationRequest,
    client: ClientRow,
    browser: BrowserSession,
) -> str:
    """A fresh code for this request and sign-in (stored only as its hash)."""
    code = new_secret()
    now = ctx.now()
    await code_store.add_code(
        session,
        code_hash=hash_secret(code),
        client_id=client.client_id,
        user_id=browser.user_id,
        browser_session_id=browser.id,
        redirect_uri=request.redirect_uri,
        scope=request.scope,
        audiences=sorted(client.audiences) or [ctx.issuer.issuer],
        nonce=request.nonce,
        code_challenge=request.code_challenge,
        now=now,
        expires_at=now + ctx.settings.authorization_code_ttl,
    )
    return code


async def authorization_code_grant(
    ctx: ServerContext,
    creds: ClientCredentials,
    *,
    code: str | None,
    redirect_uri: str | None,
    code_verifier: str | None,
    client_ip: str | None,
    dpop_jkt: str | None = None,
) -> TokenResponse:
    """Exchange a code for tokens (RFC 6749 §4.1.3, RFC 7636 §4.6, OIDC Core §3.1.3).

    One read of the client with the code, its browser sign-in, user and roles;
    one update marks the code used and binds it to the session its tokens belong
    to, which is then opened (in one transaction on SQLite; in one statement on
    PostgreSQL). Of two concurrent exchanges of one code, one update uses it; the
    other finds it used and ends the session the first opened, as for any replay
    (in a transaction of its own).

    Raises:
        InvalidClient: the client credentials do not prove a registered client.
        UnauthorizedClient: the client may not use this grant.
        InvalidRequest: ``code``, ``redirect_uri`` or ``code_verifier`` is missing.
        InvalidGrant: unknown, expired, reused or foreign code, a redirect URI
            or verifier that does not match, or a sign-in that has ended.
    """
    cursors: list[int] = []
    opened: Opened | None = None
    replayed: UsedBefore | None = None
    # SQLite: one transaction, which takes the write lock at once (BEGIN IMMEDIATE).
    # PostgreSQL: the read locks nothing, and the code is used and its session opened
    # in one statement, which needs no transaction around it.
    async with ctx.db.core(transaction=ctx.db.is_sqlite) as session:
        read, found = await code_store.load_client_and_exchange(
            session, creds.client_id, None if code is None else hash_secret(code)
        )
        client = check_client_credentials(read, creds)
        check_grant_type(client, "authorization_code")
        check_dpop_requirement(client, dpop_jkt)
        code = _required(code, "code")
        redirect_uri = _required(redirect_uri, "redirect_uri")
        code_verifier = _required(code_verifier, "code_verifier")
        if found is not None and found.client_id == client.client_id:
            outcome = (
                UsedBefore(found.session_id)
                if found.used_at is not None
                else await _use(ctx, session, client, found, redirect_uri, code_verifier, dpop_jkt)
            )
            if isinstance(outcome, UsedBefore):
                replayed = outcome
            else:
                opened = outcome
    if replayed is not None:
        assert found is not None  # a replay only of a found code
        info = RequestInfo(client_ip=client_ip, actor=client.client_id)
        async with ctx.db.transaction(short=True) as session:
            cursors = await _end_replayed(ctx, session, found.client_id, replayed.session_id, info)
    await publish.announce(ctx, cursors)
    if opened is None:
        raise InvalidGrant(_BAD_CODE)
    assert found is not None  # opened only from a found code
    return _tokens(ctx, client, found.nonce, opened, dpop_jkt)


def _required(value: str | None, name: str) -> str:
    if value is None:
        raise InvalidRequest(f"the '{name}' parameter is required")
    return value


def _usable(found: Exchange, redirect_uri: str, verifier: str, now: float) -> bool:
    """The code matches this request, and its sign-in and user are still good."""
    return (
        found.expires_at > now
        and found.redirect_uri == redirect_uri
        and verifier_matches(verifier, found.code_challenge)
        and found.browser_expires_at is not None
        and found.browser_ended_at is None
        and found.browser_expires_at > now
        and not found.user.blocked
    )


@dataclass(frozen=True, slots=True)
class UsedBefore:
    """The code was used already: a replay. ``session_id`` is the session its first
    exchange opened (``None`` when that exchange was refused)."""

    session_id: str | None


@dataclass(frozen=True, slots=True)
class Opened:
    """The session a code exchange opened, with what its tokens carry."""

    session: SessionRow
    user: UserRow
    roles: list[str]
    refresh_token: str | None


async def _use(
    ctx: ServerContext,
    session: Statements,
    client: ClientRow,
    found: Exchange,
    redirect_uri: str,
    verifier: str,
    dpop_jkt: str | None = None,
) -> Opened | UsedBefore | None:
    """Mark the code used (even when this request may not use it: a code is presented
    once) and, if it is good, open its session: the session id is made first so that
    one UPDATE both uses the code and binds it to the session."""
    now = ctx.now()
    good = _usable(found, redirect_uri, verifier, now)
    sid = session_store.new_session_id() if good else None
    opening: dict[str, Any] | None = None
    refresh_row: dict[str, Any] | None = None
    refresh: str | None = None
    if good:
        assert found.browser_expires_at is not None and found.browser_auth_time is not None
        settings = ctx.settings
        opening = session_store.session_values(
            session_id=sid,
            user_id=found.user.id,
            client_id=client.client_id,
            scope=found.scope,
            audiences=found.audiences,
            now=now,
            expires_at=min(now + settings.refresh_absolute_ttl, found.browser_expires_at),
            auth_time=found.browser_auth_time,
            parent_id=found.browser_session_id,
            amr=found.browser_amr or ["pwd"],
            dpop_jkt=public_client_binding(client, dpop_jkt),
        )
        if "refresh_token" in client.grant_types:
            refresh = new_secret()
            refresh_row = {
                "token_hash": hash_secret(refresh),
                "created_at": now,
                "expires_at": min(now + settings.refresh_idle_ttl, opening["expires_at"]),
            }
    if opening is not None and not ctx.db.is_sqlite:
        # PostgreSQL: the code used and the session opened in one round trip.
        used = await code_store.use_code_opening(
            session, found.code_hash, now=now, opening=opening, refresh=refresh_row
        )
    else:
        used = await code_store.use_code(session, found.code_hash, now=now, session_id=sid)
    if not used:
        # Another exchange used it since the read: its update committed while this one
        # waited for the row (PostgreSQL). A replay after all.
        _, used_by = await code_store.load_use(session, found.code_hash)
        return UsedBefore(used_by)
    if opening is None:
        return None
    if ctx.db.is_sqlite:
        await session_store.insert_session(session, opening)
        if refresh_row is not None:
            await session_store.add_refresh_token(
                session,
                token_hash=refresh_row["token_hash"],
                session_id=opening["id"],
                now=now,
                expires_at=refresh_row["expires_at"],
            )
    return Opened(detached(SessionRow, opening), found.user, found.roles, refresh)


def _tokens(
    ctx: ServerContext,
    client: ClientRow,
    nonce: str | None,
    opened: Opened,
    dpop_jkt: str | None = None,
) -> TokenResponse:
    sess = opened.session
    access = ctx.issuer.access_token(
        subject=opened.user.id,
        client_id=client.client_id,
        audiences=sess.audiences,
        scope=sess.scope,
        roles=opened.roles,
        session_id=sess.id,
        auth_time=sess.auth_time,
        username=opened.user.username,
        amr=sess.amr or ["pwd"],
        dpop_jkt=dpop_jkt,
    )
    id_token = None
    if "openid" in sess.scope.split():
        id_token = mint_id_token(
            ctx,
            user=opened.user,
            client_id=client.client_id,
            session_id=sess.id,
            auth_time=sess.auth_time,
            amr=sess.amr or ["pwd"],
            nonce=nonce,
            scopes=sess.scope.split(),
            access_token=access.token,
        )
    return TokenResponse(
        access.token,
        access.expires_in,
        sess.scope,
        opened.refresh_token,
        id_token,
        token_type="Bearer" if dpop_jkt is None else "DPoP",
    )


async def _end_replayed(
    ctx: ServerContext,
    session: AsyncSession,
    client_id: str,
    session_id: str | None,
    info: RequestInfo,
) -> list[int]:
    """End the session a replayed code's first exchange opened, if any, and audit it."""
    cursors: list[int] = []
    if session_id is not None:
        await session_store.end_session(session, session_id, now=ctx.now(), reason="code_replay")
        cursors = await publish.revoke(ctx, session, "sid", [session_id], reason="code_replay")
    await audit.record(
        ctx,
        session,
        "code_replay",
        outcome="revoked",
        info=info,
        client_id=client_id,
        session_id=session_id,
    )
    return cursors
