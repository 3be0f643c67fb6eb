"""Bearer tokens presented to the auth server itself (userinfo, account, admin APIs).

The server verifies with the token core like any service, then checks online
what a service learns from the feed: the session is open, the user is not
blocked, and no revocation event covers the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select

from authmesh.jose import ACCESS_TOKEN_TYPES, TokenRejected, VerifyPolicy, verify_jwt
from authmesh.server.core import AuthCore
from authmesh.server.errors import InsufficientScope, InvalidBearer
from authmesh.store import sessions as session_store
from authmesh.store import users as user_store
from authmesh.store.models import RevocationRow

__all__ = ["BearerPrincipal", "authenticate_bearer", "check_live", "parse_bearer", "require_admin"]

_REQUIRED = frozenset({"iss", "sub", "exp", "iat", "jti", "client_id"})


@dataclass(frozen=True, slots=True, kw_only=True)
class BearerPrincipal:
    """The caller behind a valid bearer token."""

    subject: str
    client_id: str
    session_id: str | None
    roles: frozenset[str]
    claims: dict[str, Any]
    username: str | None


def parse_bearer(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 §2.1).

    Raises:
        InvalidBearer: no header (without an error code), or a malformed one.
    """
    if not authorization:
        raise InvalidBearer("no bearer token", missing=True)
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise InvalidBearer("the Authorization header must be 'Bearer <token>'")
    return token


def _policy(core: AuthCore) -> VerifyPolicy:
    return VerifyPolicy(
        issuer=core.issuer.issuer,
        audience=None,  # any audience: the auth server serves every client's users
        types=ACCESS_TOKEN_TYPES,
        required_claims=_REQUIRED,
        leeway=core.settings.leeway,
    )


async def authenticate_bearer(core: AuthCore, authorization: str | None) -> BearerPrincipal:
    """Verify the bearer token and check that it is still live.

    Raises:
        InvalidBearer: any reason the token must not be accepted.
    """
    token = parse_bearer(authorization)
    await core.keys.refresh_if_stale()
    try:
        verified = verify_jwt(token, core.keys.published(), _policy(core), clock=core.clock)
    except TokenRejected as exc:
        raise InvalidBearer(exc.message) from None
    claims = verified.claims
    principal = await check_live(core, claims)
    if principal is None:
        raise InvalidBearer("the token has been revoked")
    return principal


async def check_live(core: AuthCore, claims: dict[str, Any]) -> BearerPrincipal | None:
    sub, sid, jti = claims["sub"], claims.get("sid"), claims["jti"]
    covered = [
        and_(RevocationRow.kind == "jti", RevocationRow.value == jti),
        and_(
            RevocationRow.kind == "sub",
            RevocationRow.value == sub,
            RevocationRow.not_before > claims["iat"],
        ),
    ]
    if isinstance(sid, str):
        covered.append(and_(RevocationRow.kind == "sid", RevocationRow.value == sid))
    async with core.db.transaction() as session:
        revoked = (
            await session.execute(select(RevocationRow.cursor).where(or_(*covered)).limit(1))
        ).first()
        if revoked is not None:
            return None
        username = None
        if sid is not None:
            sess = await session_store.get_session(session, sid)
            user = await user_store.get_user_by_id(session, sub)
            if sess is None or sess.ended_at is not None or user is None or user.blocked:
                return None
            roles = frozenset(await user_store.get_roles(session, sub))
            username = user.username
        else:
            roles = frozenset(r for r in claims.get("roles", []) if isinstance(r, str))
    return BearerPrincipal(
        subject=sub,
        client_id=claims["client_id"],
        session_id=sid,
        roles=roles,
        claims=claims,
        username=username,
    )


def require_admin(principal: BearerPrincipal) -> None:
    """The admin API needs a user holding the ``admin`` role now (not just in the token).

    Raises:
        InsufficientScope: the caller is not an admin.
    """
    if principal.session_id is None or "admin" not in principal.roles:
        raise InsufficientScope("the admin role is required")
