"""Passkeys as factors: this server as relying party, its spent-once challenges, and
registering a user's passkey (audited)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from authmesh.server import audit
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.errors import InvalidRequest
from authmesh.server.mfa.enrolment import factor_name, issue_recovery_codes
from authmesh.server.mfa.passkeys import PasskeyError, RelyingParty
from authmesh.store import factors as factor_store

__all__ = [
    "PasskeyChallenge",
    "new_passkey_challenge",
    "passkey_registration",
    "register_passkey",
    "relying_party",
    "spend_passkey_challenge",
]


def relying_party(ctx: ServerContext) -> RelyingParty:
    """This server as a WebAuthn relying party (its issuer URL's host and origin)."""
    return RelyingParty.for_issuer(ctx.issuer.issuer, ctx.settings.realm)


@dataclass(frozen=True, slots=True)
class PasskeyChallenge:
    """A WebAuthn challenge and the options JSON that carries it to the browser."""

    challenge: str
    options_json: str


def new_passkey_challenge() -> bytes:
    """32 random bytes."""
    return secrets.token_bytes(32)


async def passkey_registration(
    ctx: ServerContext, user_id: str, username: str, *, discoverable: bool
) -> PasskeyChallenge:
    """Options for registering a new passkey (the user's others are excluded)."""
    async with ctx.db.transaction() as session:
        rows = await factor_store.list_factors(session, user_id)
    existing = [r.credential_id for r in rows if r.kind == "passkey" and r.credential_id]
    challenge = new_passkey_challenge()
    options = relying_party(ctx).registration_options(
        challenge=challenge,
        user_id=user_id,
        username=username,
        existing=existing,
        discoverable=discoverable,
    )
    return PasskeyChallenge(challenge.hex(), options)


async def spend_passkey_challenge(
    ctx: ServerContext, challenge_hex: str, *, purpose: str, user_id: str | None
) -> bytes:
    """The challenge bytes, spent: a second answer to the same challenge is refused.

    Raises:
        PasskeyError: the challenge was answered before, or is malformed.
    """
    try:
        challenge = bytes.fromhex(challenge_hex)
    except ValueError:
        raise PasskeyError("the passkey challenge is malformed") from None
    now = ctx.now()
    try:
        async with ctx.db.transaction() as session:
            await factor_store.spend_challenge(
                session,
                hashlib.sha256(challenge).hexdigest(),
                purpose=purpose,
                user_id=user_id,
                expires_at=now + ctx.settings.mfa_pending_ttl + 60,
                now=now,
            )
    except IntegrityError:
        raise PasskeyError("this passkey challenge was already answered") from None
    return challenge


async def register_passkey(
    ctx: ServerContext,
    user_id: str,
    username: str,
    *,
    credential_json: str,
    challenge_hex: str,
    name: str = "",
    passwordless: bool = False,
    info: RequestInfo | None = None,
) -> list[str]:
    """Verify and store a new passkey; returns fresh recovery codes if it is the first factor.

    Raises:
        InvalidRequest: the registration does not verify (audited).
    """
    try:
        challenge = await spend_passkey_challenge(
            ctx, challenge_hex, purpose="register", user_id=user_id
        )
        verified = relying_party(ctx).verify_registration(credential_json, challenge)
    except PasskeyError as exc:
        async with ctx.db.transaction() as session:
            await audit.record(
                ctx,
                session,
                "mfa_enrol",
                outcome="failure",
                info=info,
                subject=username,
                kind="passkey",
                reason=str(exc)[:200],
            )
        raise InvalidRequest(str(exc)) from None
    try:
        async with ctx.db.transaction() as session:
            first = not await factor_store.list_factors(session, user_id)
            row = await factor_store.add_factor(
                session,
                user_id=user_id,
                kind="passkey",
                name=factor_name(name, "Passkey"),
                now=ctx.now(),
                credential_id=verified.credential_id,
                public_key=verified.public_key,
            )
            row.sign_count = verified.sign_count
            row.backed_up = verified.backed_up
            row.passwordless = passwordless
            codes = await issue_recovery_codes(ctx, session, user_id) if first else []
            await audit.record(
                ctx,
                session,
                "mfa_enrol",
                info=info,
                subject=username,
                kind="passkey",
                factor=row.id,
                passwordless=passwordless,
            )
    except IntegrityError:
        raise InvalidRequest("this passkey is registered already") from None
    return codes
