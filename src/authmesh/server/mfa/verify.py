"""The second step of a sign-in: a TOTP or recovery code, or a passkey assertion.

Wrong codes count against the same brute-force limits as wrong passwords (on
their own account key, ``2fa:<username>``, and the caller's address) and are
audited; a TOTP code works once, even within its 30 seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.server import audit
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.errors import InvalidGrant, RateLimited
from authmesh.server.mfa import recovery, totp
from authmesh.server.mfa.passkey_factors import relying_party, spend_passkey_challenge
from authmesh.server.mfa.passkeys import PasskeyError, credential_id_of
from authmesh.server.mfa.policy import mfa_required
from authmesh.server.mfa.totp_sealing import totp_secret_of
from authmesh.store import factors as factor_store
from authmesh.store import users as user_store
from authmesh.store.models import FactorRow, UserRow

__all__ = [
    "BAD_CODE",
    "BAD_PASSKEY",
    "PasskeySignIn",
    "SecondFactorState",
    "check_code",
    "check_passkey",
    "refuse_password_only",
    "second_factor_state",
]

BAD_CODE = "That code did not work. Try the current code, or a recovery code."
BAD_PASSKEY = "That passkey could not be used to sign in."


def _limit_key(username: str) -> str:
    return f"2fa:{username}"


@dataclass(frozen=True, slots=True)
class SecondFactorState:
    """What a user can answer the second step with, and the roles the policy looks at."""

    has_totp: bool
    passkeys: list[str]
    roles: list[str]

    @property
    def enabled(self) -> bool:
        """Whether the user has any factor."""
        return self.has_totp or bool(self.passkeys)


async def second_factor_state(
    ctx: ServerContext, user_id: str, *, with_roles: bool = True
) -> SecondFactorState:
    """The user's factors (one statement) and, if asked, roles (a second one)."""
    async with ctx.db.transaction() as session:
        rows = await factor_store.list_factors(session, user_id)
        roles = await user_store.get_roles(session, user_id) if with_roles else []
    return SecondFactorState(
        has_totp=any(r.kind == "totp" for r in rows),
        passkeys=[r.credential_id for r in rows if r.kind == "passkey" and r.credential_id],
        roles=roles,
    )


async def _before(
    ctx: ServerContext,
    limit: str,
    username: str,
    info: RequestInfo,
    client_id: str | None,
    method: str,
) -> None:
    """The brute-force guard, with refusals audited like failures."""
    try:
        await ctx.guard.before_login(limit, info.client_ip)
    except RateLimited:
        async with ctx.db.transaction() as session:
            await _audit_failure(ctx, session, username, info, client_id, "rate_limited", method)
        raise


async def _failed(
    ctx: ServerContext,
    limit: str,
    username: str,
    info: RequestInfo,
    client_id: str | None,
    reason: str,
    method: str,
) -> None:
    locked = await ctx.guard.failed(limit, info.client_ip)
    async with ctx.db.transaction() as session:
        await _audit_failure(ctx, session, username, info, client_id, reason, method)
        if locked:
            await audit.record(
                ctx,
                session,
                "lockout",
                outcome="locked",
                info=info,
                subject=username,
                factor="second",
            )


async def _audit_failure(
    ctx: ServerContext,
    session: AsyncSession,
    username: str,
    info: RequestInfo,
    client_id: str | None,
    reason: str,
    method: str,
) -> None:
    await audit.record(
        ctx,
        session,
        "mfa_verify",
        outcome="failure",
        info=info,
        subject=username,
        client_id=client_id,
        reason=reason,
        method=method,
    )


async def check_code(
    ctx: ServerContext,
    user_id: str,
    username: str,
    code: str,
    *,
    info: RequestInfo,
    client_id: str | None,
) -> str:
    """Check a TOTP code, else a recovery code; the ``amr`` method it proves (``otp``).

    Raises:
        RateLimited: too many wrong codes lately, for this account or address.
        InvalidGrant: wrong, reused or malformed code (audited).
    """
    await _before(ctx, _limit_key(username), username, info, client_id, "code")
    now = ctx.now()
    code = code.strip()[:64]
    method: str | None = None
    reason = "bad_code"
    async with ctx.db.transaction() as session:
        rows = [r for r in await factor_store.list_factors(session, user_id) if r.kind == "totp"]
        for row in rows:
            step = totp.matching_step(totp_secret_of(ctx, row), code, now)
            if step is None:
                continue
            if await factor_store.use_totp_step(session, row.id, step, now=now):
                method = "totp"
            else:
                reason = "replayed_code"
            break
        if method is None and reason == "bad_code" and len(recovery.normalize(code)) == 10:
            spent = await factor_store.use_recovery_code(
                session, user_id, recovery.recovery_code_hash(ctx.pepper, code), now=now
            )
            method = "recovery_code" if spent else None
        if method is not None:
            left = await factor_store.count_recovery_codes(session, user_id)
            await audit.record(
                ctx,
                session,
                "mfa_verify",
                info=info,
                subject=username,
                client_id=client_id,
                method=method,
                recovery_codes_left=left,
            )
    if method is None:
        await _failed(ctx, _limit_key(username), username, info, client_id, reason, "code")
        raise InvalidGrant(BAD_CODE)
    await ctx.guard.succeeded(_limit_key(username))
    return "otp"


@dataclass(frozen=True, slots=True)
class PasskeySignIn:
    """A verified passkey assertion: whose, and the ``amr`` methods it proves."""

    user: UserRow
    methods: list[str]


def _methods(row: FactorRow, backed_up: bool, user_verified: bool) -> list[str]:
    # A synced passkey lives in software the user's account controls; a device-bound
    # one in an authenticator's hardware (RFC 8176 "swk" / "hwk").
    methods = ["swk" if backed_up else "hwk"]
    if user_verified:
        methods.append("user")
    return methods


async def check_passkey(
    ctx: ServerContext,
    *,
    credential_json: str,
    challenge_hex: str,
    user_id: str | None,
    username: str | None,
    info: RequestInfo,
    client_id: str | None,
) -> PasskeySignIn:
    """Verify a passkey assertion against the challenge this server signed into the form.

    ``user_id`` is the user who passed the password (second factor); ``None`` for a
    passwordless sign-in, where the passkey names the user and must have been
    registered for signing in without a password, with user verification.

    Raises:
        RateLimited: too many failures from this address.
        InvalidGrant: another user's passkey, another origin or RP, a spent or
            stale challenge, a bad signature or counter (audited).
    """
    # A passwordless attempt names no account until it verifies: its failures count
    # against the address only, so no one can lock everybody's passkeys out.
    limit = _limit_key(username or f"passkey@{info.client_ip}")
    await _before(ctx, limit, username or "passkey", info, client_id, "passkey")
    purpose = "authenticate" if user_id else "passwordless"
    reason: str | None = None
    found: FactorRow | None = None
    user: UserRow | None = None
    subject = username or "passkey"
    try:
        credential_id = credential_id_of(credential_json)
        async with ctx.db.transaction() as session:
            found = await factor_store.factor_by_credential(session, credential_id)
            if found is not None:
                user = await user_store.get_user_by_id(session, found.user_id)
        if found is None or found.kind != "passkey" or user is None:
            raise PasskeyError("unknown passkey")
        if user_id is None:
            subject = user.username
        if user_id is not None and found.user_id != user_id:
            raise PasskeyError("the passkey belongs to another user")
        if user_id is None and not found.passwordless:
            raise PasskeyError("the passkey is not set up for signing in without a password")
        if user.blocked:
            raise PasskeyError("the account is blocked")
        challenge = await spend_passkey_challenge(
            ctx, challenge_hex, purpose=purpose, user_id=user_id
        )
        assert found.public_key is not None
        verified = relying_party(ctx).verify_assertion(
            credential_json,
            challenge,
            public_key=found.public_key,
            sign_count=found.sign_count,
            require_user_verification=user_id is None,
        )
        async with ctx.db.transaction() as session:
            if not await factor_store.use_passkey(
                session,
                found.id,
                old_count=found.sign_count,
                new_count=verified.new_sign_count,
                now=ctx.now(),
                backed_up=verified.backed_up,
            ):
                raise PasskeyError("the passkey was used by another sign-in at the same time")
            await audit.record(
                ctx,
                session,
                "mfa_verify",
                info=info,
                subject=user.username,
                client_id=client_id,
                method="passkey",
                factor=found.id,
                passwordless=user_id is None,
            )
    except PasskeyError as exc:
        reason = str(exc)
    if reason is not None or user is None or found is None:
        await _failed(ctx, limit, subject, info, client_id, (reason or "unknown")[:200], "passkey")
        raise InvalidGrant(BAD_PASSKEY)
    await ctx.guard.succeeded(limit)
    return PasskeySignIn(user, _methods(found, verified.backed_up, verified.user_verified))


async def refuse_password_only(
    ctx: ServerContext,
    user: UserRow,
    roles: Sequence[str],
    *,
    info: RequestInfo,
    client_id: str,
) -> None:
    """Refuse a sign-in by password alone (the password grant) for a user who has a
    second factor or whose roles require one.

    Raises:
        InvalidGrant: the account needs a second factor (audited).
    """
    if not mfa_required(ctx.settings, roles):
        async with ctx.db.transaction() as session:
            if not await factor_store.list_factors(session, user.id):
                return
    async with ctx.db.transaction() as session:
        await audit.record(
            ctx,
            session,
            "login",
            outcome="failure",
            info=info,
            subject=user.username,
            client_id=client_id,
            reason="second_factor_required",
        )
    raise InvalidGrant("this account signs in with a second factor: use the browser sign-in")
