"""Bearer tokens presented to the auth server itself (userinfo, account, admin APIs).

The server verifies with the token core like any service, then checks online
what a service learns from the feed: the session is open, the user is not
blocked, and no revocation event covers the token. The header is read and
failures are answered by RFC 6750 as in the SDK (:mod:`authmesh.rfc6750`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from authmesh.errors import DpopRequired, InsufficientScope, InvalidDpopProof, MissingToken
from authmesh.jose import ACCESS_TOKEN_TYPES, TokenRejected, TokenRevoked, VerifyPolicy, verify_jwt
from authmesh.rfc6750 import parse_credentials
from authmesh.server.context import ServerContext
from authmesh.server.dpop_proofs import check_proof
from authmesh.store import revocations
from authmesh.store import sessions as session_store
from authmesh.store import users as user_store

__all__ = [
    "BearerPrincipal",
    "authenticate_bearer",
    "check_live",
    "live_access_claims",
    "require_admin",
    "verify_access_token",
]

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


def _policy(ctx: ServerContext) -> VerifyPolicy:
    return VerifyPolicy(
        issuer=ctx.issuer.issuer,
        audience=None,  # any audience: the auth server serves every client's users
        types=ACCESS_TOKEN_TYPES,
        required_claims=_REQUIRED,
        leeway=ctx.settings.leeway,
    )


async def verify_access_token(ctx: ServerContext, token: str) -> dict[str, Any]:
    """The claims of an access token this server issued (signature, type, times).

    Raises:
        TokenRejected: why the token is not valid.
    """
    await ctx.keys.refresh_if_stale()
    return verify_jwt(token, ctx.keys.published(), _policy(ctx), clock=ctx.clock).claims


async def live_access_claims(ctx: ServerContext, token: str) -> dict[str, Any] | None:
    """The claims of a valid and still live access token of this issuer, else ``None``."""
    if token.count(".") != 2:
        return None
    try:
        claims = await verify_access_token(ctx, token)
    except TokenRejected:
        return None
    if await check_live(ctx, claims) is None:
        return None
    return claims


async def authenticate_bearer(
    ctx: ServerContext,
    authorization: Sequence[str],
    *,
    proofs: Sequence[str] = (),
    method: str = "GET",
    path: str = "/",
) -> BearerPrincipal:
    """Verify the access token of the ``Authorization`` headers and check that it is live.

    A DPoP-bound token (``cnf.jkt``) is taken only as ``DPoP <token>`` with a proof
    by its key for ``method`` and this server's URL of ``path`` (RFC 9449 §7).

    Raises:
        MissingToken: no header.
        InvalidRequest: a malformed header (RFC 6750 §2.1).
        DpopRequired / InvalidDpopProof: the token's binding is not honoured.
        TokenRejected: the token is not valid, or (``TokenRevoked``) no longer live.
    """
    credentials = parse_credentials(authorization)
    if credentials is None:
        raise MissingToken("no bearer token")
    scheme, token = credentials
    claims = await verify_access_token(ctx, token)
    await _check_binding(ctx, claims, scheme, token, proofs, method, path)
    principal = await check_live(ctx, claims)
    if principal is None:
        raise TokenRevoked()
    return principal


async def _check_binding(
    ctx: ServerContext,
    claims: dict[str, Any],
    scheme: str,
    token: str,
    proofs: Sequence[str],
    method: str,
    path: str,
) -> None:
    cnf = claims.get("cnf")
    bound = cnf.get("jkt") if isinstance(cnf, dict) else None
    if scheme == "bearer":
        if bound is not None:
            raise DpopRequired()
        return
    if bound is None:
        raise DpopRequired("the token is not bound to a DPoP key: send it as a bearer token")
    if len(proofs) != 1:
        raise InvalidDpopProof("send exactly one DPoP proof")
    proof = await check_proof(
        ctx,
        proofs[0],
        method=method,
        url=f"{ctx.issuer.issuer}{path}",
        access_token=token,
        leeway=float(ctx.settings.leeway),
    )
    if proof.jkt != bound:
        raise InvalidDpopProof("the proof is signed by another key than the token is bound to")


async def check_live(ctx: ServerContext, claims: dict[str, Any]) -> BearerPrincipal | None:
    """The principal of verified claims, or ``None`` when the token is no longer live.

    Not live: a revocation event covers it, its session has ended, or its user
    is gone or blocked. A user's roles are read now, not taken from the token.
    """
    sub, sid = claims["sub"], claims.get("sid")
    async with ctx.db.transaction() as session:
        if await revocations.covering_cursor(session, claims) is not None:
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
