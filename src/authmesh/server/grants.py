"""The token endpoint's grants (RFC 6749 §4.3, §4.4, §6), free of HTTP.

Refresh tokens rotate on every use. A used token presented again is a retry
while its successor is unused and the retry window (``refresh_reuse_grace``,
60 s by default) has not passed: it gets the same successor again, derived from
the token with an HMAC, so no plaintext is stored. Any other reuse revokes the
whole session (theft detection, RFC 9700 §4.14.2). docs/security.md explains why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.server import audit
from authmesh.server.client_auth import (
    ClientCredentials,
    authenticate_client,
    check_dpop_requirement,
    check_grant_type,
)
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.errors import (
    InvalidDpopProofError,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
)
from authmesh.server.feed import publish
from authmesh.server.login import verify_login
from authmesh.server.mfa.verify import refuse_password_only
from authmesh.server.secrets import hash_secret, new_secret, successor_token
from authmesh.store import sessions as session_store
from authmesh.store import users as user_store
from authmesh.store.models import ClientRow
from authmesh.store.sessions import Rotation

__all__ = [
    "TokenResponse",
    "client_credentials_grant",
    "password_grant",
    "refresh_grant",
    "resolve_audiences",
    "resolve_scope",
]

_BAD_REFRESH = "the refresh token is invalid, expired or revoked"


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """RFC 6749 §5.1 successful response."""

    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    id_token: str | None = None
    token_type: str = "Bearer"
    """``DPoP`` when the access token is bound to the client's key (RFC 9449 §5)."""

    def to_json(self) -> dict[str, Any]:
        """The JSON body."""
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.id_token is not None:
            body["id_token"] = self.id_token
        return body


def resolve_scope(requested: str | None, allowed: Sequence[str]) -> str:
    """The granted scope: what was asked (all allowed when nothing was), in a stable order.

    Raises:
        InvalidScope: a requested scope is not allowed for the client.
    """
    if requested is None:
        return " ".join(sorted(allowed))
    wanted = requested.split()
    extra = sorted(set(wanted) - set(allowed))
    if extra:
        raise InvalidScope(f"scope not allowed for this client: {' '.join(extra)[:200]}")
    return " ".join(sorted(set(wanted)))


def resolve_audiences(requested: Sequence[str], allowed: Sequence[str], issuer: str) -> list[str]:
    """The ``aud`` values: what was asked (RFC 8707 ``resource``/``audience``) or all allowed.

    A client with no audiences configured gets tokens for the auth server itself.

    Raises:
        InvalidTarget: an audience the client may not request.
    """
    if not requested:
        return sorted(allowed) if allowed else [issuer]
    extra = sorted(set(requested) - set(allowed))
    if extra:
        raise InvalidTarget(f"audience not allowed for this client: {' '.join(extra)[:200]}")
    return sorted(set(requested))


async def password_grant(
    ctx: ServerContext,
    creds: ClientCredentials,
    *,
    username: str | None,
    password: str | None,
    scope: str | None,
    audiences: Sequence[str],
    client_ip: str | None,
    dpop_jkt: str | None = None,
) -> TokenResponse:
    """Log a user in: check the password, open a session, issue both tokens.

    The client is authenticated in the same transaction that reads the user.

    Raises:
        InvalidClient: the client credentials do not prove a registered client.
        UnauthorizedClient: the client may not use this grant.
        InvalidRequest: ``username`` or ``password`` is missing.
        InvalidGrant: unknown user, wrong password or blocked account, all alike.
    """
    async with ctx.db.transaction() as session:
        client = await authenticate_client(ctx, creds, session=session)
        check_grant_type(client, "password")
        check_dpop_requirement(client, dpop_jkt)
        username = _required(username, "username")
        password = _required(password, "password")
        granted_scope = resolve_scope(scope, client.scopes)
        auds = resolve_audiences(audiences, client.audiences, ctx.issuer.issuer)
        # Read now, used only once the guard lets the attempt through.
        user, roles = await user_store.get_user_and_roles(session, username)
    info = RequestInfo(client_ip=client_ip, actor=client.client_id)
    verified = await verify_login(
        ctx, user, username, password, info=info, client_id=client.client_id
    )
    user, new_hash = verified.user, verified.new_hash
    # The password alone must not open an account that signs in with two factors.
    await refuse_password_only(ctx, user, roles, info=info, client_id=client.client_id)

    now = ctx.now()
    settings = ctx.settings
    refresh = new_secret()
    async with ctx.db.transaction() as session:
        if new_hash is not None:
            row = await user_store.get_user_by_id(session, user.id, for_update=True)
            if row is not None:
                row.password_hash = new_hash
        sess = await session_store.create_session(
            session,
            user_id=user.id,
            client_id=client.client_id,
            scope=granted_scope,
            audiences=auds,
            now=now,
            expires_at=now + settings.refresh_absolute_ttl,
            dpop_jkt=public_client_binding(client, dpop_jkt),
            amr=["pwd"],
        )
        await session_store.add_refresh_token(
            session,
            token_hash=hash_secret(refresh),
            session_id=sess.id,
            now=now,
            expires_at=min(now + settings.refresh_idle_ttl, sess.expires_at),
        )
        await audit.record(
            ctx,
            session,
            "login",
            info=info,
            subject=user.username,
            client_id=client.client_id,
            session_id=sess.id,
        )
    access = ctx.issuer.access_token(
        subject=user.id,
        client_id=client.client_id,
        audiences=auds,
        scope=granted_scope,
        roles=roles,
        session_id=sess.id,
        auth_time=sess.auth_time,
        username=user.username,
        amr=["pwd"],
        dpop_jkt=dpop_jkt,
    )
    return TokenResponse(
        access.token, access.expires_in, granted_scope, refresh, token_type=_type_of(dpop_jkt)
    )


async def refresh_grant(
    ctx: ServerContext,
    creds: ClientCredentials,
    *,
    refresh_token: str | None,
    scope: str | None,
    client_ip: str | None,
    dpop_jkt: str | None = None,
) -> TokenResponse:
    """Rotate a refresh token and issue a fresh access token with current roles.

    One transaction: the client, then one read of the token with its successor,
    session, user and roles (the token and session rows locked), then at most
    three writes. A retry inside the window gets the same refresh token again
    and writes nothing.

    Raises:
        InvalidClient: the client credentials do not prove a registered client.
        UnauthorizedClient: the client may not use this grant.
        InvalidRequest: ``refresh_token`` is missing.
        InvalidGrant: unknown, expired, foreign, reused (not a retry) or
            revoked refresh token, or the user is blocked.
    """
    reused = False
    cursors: list[int] = []
    async with ctx.db.transaction() as session:
        client = await authenticate_client(ctx, creds, session=session)
        check_grant_type(client, "refresh_token")
        check_dpop_requirement(client, dpop_jkt)
        refresh_token = _required(refresh_token, "refresh_token")
        now = ctx.now()
        token_hash = hash_secret(refresh_token)
        successor = successor_token(ctx.pepper, refresh_token)
        successor_hash = hash_secret(successor)
        found = await session_store.load_rotation(session, token_hash)
        if found is None or found.client_id != client.client_id:
            raise InvalidGrant(_BAD_REFRESH)
        if not _rotation_usable(found, now):
            raise InvalidGrant(_BAD_REFRESH)
        if found.dpop_jkt is not None and found.dpop_jkt != dpop_jkt:
            # RFC 9449 §5: a public client's refresh token is bound to its DPoP key.
            raise InvalidDpopProofError("the refresh token is bound to another DPoP key")
        if found.used_at is None:
            if found.expires_at <= now:
                raise InvalidGrant(_BAD_REFRESH)
            if await session_store.mark_refresh_used(
                session, token_hash, now=now, successor_hash=successor_hash
            ):
                await session_store.add_refresh_token(
                    session,
                    token_hash=successor_hash,
                    session_id=found.session_id,
                    now=now,
                    expires_at=min(now + ctx.settings.refresh_idle_ttl, found.session_expires_at),
                )
                await session_store.touch_session(session, found.session_id, now=now)
            else:
                # Unreachable under the row locks; should another writer get in
                # anyway, judge the request on what it committed.
                found = await session_store.load_rotation(session, token_hash)
                if found is None:
                    raise InvalidGrant(_BAD_REFRESH)
        if found.used_at is not None and not await _is_retry(
            session, found, now, successor_hash, ctx.settings.refresh_reuse_grace
        ):
            reused = True
            await session_store.end_session(
                session, found.session_id, now=now, reason="refresh_reuse"
            )
            cursors = await publish.revoke(
                ctx, session, "sid", [found.session_id], reason="refresh_reuse"
            )
            await audit.record(
                ctx,
                session,
                "refresh_reuse",
                outcome="revoked",
                info=RequestInfo(client_ip=client_ip, actor=client.client_id),
                subject=found.username,
                client_id=client.client_id,
                session_id=found.session_id,
            )
    if reused:
        await publish.announce(ctx, cursors)
        raise InvalidGrant(_BAD_REFRESH)

    granted_scope = found.scope
    if scope is not None:
        # §6: a refresh may narrow the scope, never widen it.
        granted_scope = resolve_scope(scope, found.scope.split())
    access = ctx.issuer.access_token(
        subject=found.user_id,
        client_id=client.client_id,
        audiences=found.audiences,
        scope=granted_scope,
        roles=found.roles,
        session_id=found.session_id,
        auth_time=found.auth_time,
        username=found.username,
        amr=found.amr,
        dpop_jkt=dpop_jkt,
    )
    return TokenResponse(
        access.token, access.expires_in, granted_scope, successor, token_type=_type_of(dpop_jkt)
    )


def _required(value: str | None, name: str) -> str:
    if value is None:
        raise InvalidRequest(f"the '{name}' parameter is required")
    return value


def public_client_binding(client: ClientRow, dpop_jkt: str | None) -> str | None:
    """The key a new session's refresh tokens are bound to: a public client's proof key.

    A confidential client proves itself with its secret at every refresh; a public
    one has only the key it proved possession of (RFC 9449 §5).
    """
    return dpop_jkt if client.secret_hash is None else None


def _rotation_usable(found: Rotation, now: float) -> bool:
    return not found.blocked and found.ended_at is None and found.session_expires_at > now


def _type_of(dpop_jkt: str | None) -> str:
    return "Bearer" if dpop_jkt is None else "DPoP"


async def _is_retry(
    session: AsyncSession, found: Rotation, now: float, successor_hash: str, window: float
) -> bool:
    """Whether a used token, presented again, is a retry of a refresh whose answer was lost.

    It is while the retry window since its first use has not passed and its
    successor has not been used: until then the client may never have received
    the successor, and answering it again gives nothing new away. Anything else
    is a replay. The successor's use is read after the session lock is held, so
    a rotation of it that just committed is seen.
    """
    assert found.used_at is not None
    if now - found.used_at > window or found.successor_hash != successor_hash:
        return False
    successor_used_at, _ = await session_store.reread_use(session, successor_hash)
    return successor_used_at is None


async def client_credentials_grant(
    ctx: ServerContext,
    client: ClientRow,
    *,
    scope: str | None,
    audiences: Sequence[str],
    dpop_jkt: str | None = None,
) -> TokenResponse:
    """A service's own token (RFC 6749 §4.4): ``sub`` is the client id, no refresh token.

    Raises:
        InvalidRequest: a public client (it has no secret to prove).
    """
    if client.secret_hash is None:
        raise InvalidRequest("client_credentials needs a confidential client")
    granted_scope = resolve_scope(scope, client.scopes)
    auds = resolve_audiences(audiences, client.audiences, ctx.issuer.issuer)
    access = ctx.issuer.access_token(
        subject=client.client_id,
        client_id=client.client_id,
        audiences=auds,
        scope=granted_scope,
        roles=client.roles,
        dpop_jkt=dpop_jkt,
    )
    return TokenResponse(
        access.token, access.expires_in, granted_scope, token_type=_type_of(dpop_jkt)
    )
