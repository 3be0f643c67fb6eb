"""Token exchange (RFC 8693): a service trades a user's token for one to call another service.

The calling service (an authenticated confidential client with the token-exchange
grant) presents the access token it received; the new token keeps the user as
``sub`` and names the caller in ``act`` (the whole chain when the presented token
was itself delegated), is for an audience the client may ask for, carries no
scope the presented token or the client lacks, and expires no later than the
presented token. It keeps the presented token's ``sid``, so ending the user's
session (logout, block, password change) revokes it in every service too.

Policy, per client: ``serves`` names the audiences of its own API (it may trade
only tokens meant for it), ``audiences`` those it may exchange for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authmesh.jose import TokenRejected
from authmesh.server import audit
from authmesh.server.bearer import check_live, verify_access_token
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.errors import InvalidRequest, InvalidScope, InvalidTarget
from authmesh.store.models import ClientRow

__all__ = ["ACCESS_TOKEN_TYPE", "ExchangedToken", "exchange_token"]

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
#: A JWT access token may also be named by the generic JWT type (RFC 8693 §3).
_SUBJECT_TYPES = frozenset({ACCESS_TOKEN_TYPE, "urn:ietf:params:oauth:token-type:jwt"})
#: RFC 8693 §2.2.2: an unacceptable subject token is ``invalid_request``.
_BAD_SUBJECT = "the subject_token is invalid, expired or revoked"


@dataclass(frozen=True, slots=True)
class ExchangedToken:
    """RFC 8693 §2.2.1 successful response."""

    access_token: str
    expires_in: int
    scope: str
    token_type: str = "Bearer"

    def to_json(self) -> dict[str, Any]:
        """The JSON body (no refresh token: the caller exchanges again)."""
        return {
            "access_token": self.access_token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "scope": self.scope,
        }


def _split(value: str | None) -> list[str]:
    return value.split() if value else []


def _audiences(claims: Mapping[str, Any]) -> set[str]:
    aud = claims.get("aud")
    return {aud} if isinstance(aud, str) else {a for a in aud or () if isinstance(a, str)}


def actor_chain(claims: Mapping[str, Any], actor: str) -> dict[str, Any]:
    """The ``act`` of a token delegated to ``actor``: it on top of the prior chain (§4.1)."""
    act: dict[str, Any] = {"sub": actor}
    prior = claims.get("act")
    if isinstance(prior, Mapping):
        act["act"] = dict(prior)
    return act


async def exchange_token(
    ctx: ServerContext,
    client: ClientRow,
    *,
    subject_token: str | None,
    subject_token_type: str | None,
    actor_token: str | None,
    requested_token_type: str | None,
    scope: str | None,
    audiences: Sequence[str],
    info: RequestInfo | None = None,
    dpop_jkt: str | None = None,
) -> ExchangedToken:
    """A token for another audience, on behalf of the subject token's user.

    The client is authenticated and allowed the grant (the caller checks both).

    Raises:
        InvalidRequest: a parameter is missing or unsupported, the client is
            public, or the subject token is not acceptable (invalid, expired,
            revoked, or not meant for this client's API).
        InvalidTarget: no audience was named, or one the client may not ask for.
        InvalidScope: a scope beyond the subject token's or the client's.
    """
    if client.secret_hash is None:
        raise InvalidRequest("token exchange needs a confidential client")
    if not subject_token or not subject_token_type:
        raise InvalidRequest("subject_token and subject_token_type are required")
    if subject_token_type not in _SUBJECT_TYPES:
        raise InvalidRequest("subject_token_type must be an access token")
    if actor_token is not None:
        raise InvalidRequest("actor_token is not supported: the authenticated client is the actor")
    if requested_token_type not in (None, ACCESS_TOKEN_TYPE):
        raise InvalidRequest("only access tokens can be requested")
    if not audiences:
        raise InvalidTarget("name the service the token is for (audience or resource)")
    unknown = sorted(set(audiences) - set(client.audiences))
    if unknown:
        raise InvalidTarget(f"audience not allowed for this client: {' '.join(unknown)[:200]}")

    if subject_token.count(".") != 2:
        raise InvalidRequest(_BAD_SUBJECT)
    try:
        claims = await verify_access_token(ctx, subject_token)
    except TokenRejected:
        raise InvalidRequest(_BAD_SUBJECT) from None
    principal = await check_live(ctx, claims)
    if principal is None:
        raise InvalidRequest(_BAD_SUBJECT)
    if _audiences(claims).isdisjoint(client.serves):
        raise InvalidRequest("the subject_token is not meant for this client's API")

    allowed = set(_split(claims.get("scope"))) & set(client.scopes)
    if scope is None:
        granted = sorted(allowed)
    else:
        wanted = set(_split(scope))
        beyond = sorted(wanted - allowed)
        if beyond:
            raise InvalidScope(
                f"scope beyond the subject token's or the client's: {' '.join(beyond)[:200]}"
            )
        granted = sorted(wanted)
    granted_scope = " ".join(granted)
    auds = sorted(set(audiences))
    auth_time = claims.get("auth_time")
    access = ctx.issuer.access_token(
        subject=principal.subject,
        client_id=client.client_id,
        audiences=auds,
        scope=granted_scope,
        roles=sorted(principal.roles),
        session_id=principal.session_id,
        auth_time=auth_time if isinstance(auth_time, int | float) else None,
        username=principal.username,
        actor=actor_chain(claims, client.client_id),
        expires_by=int(claims["exp"]),
        dpop_jkt=dpop_jkt,
    )
    async with ctx.db.transaction() as session:
        await audit.record(
            ctx,
            session,
            "token_exchange",
            info=info,
            subject=principal.username or principal.subject,
            client_id=client.client_id,
            audience=" ".join(auds),
            from_client=str(claims.get("client_id", "")),
        )
    return ExchangedToken(
        access.token, access.expires_in, granted_scope, "Bearer" if dpop_jkt is None else "DPoP"
    )
