"""A user's own factors: list, enrol TOTP, register passkeys, recovery codes, remove.

Every change is audited; removing a factor ends the user's other sessions
through the revocation feed (the browser sign-in that asked keeps going).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.errors import ConfigError
from authmesh.server import audit
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.errors import AccessDenied, InvalidRequest, NotFound
from authmesh.server.feed import publish
from authmesh.server.mfa import recovery, totp
from authmesh.server.mfa.passkeys import PasskeyError, RelyingParty
from authmesh.server.secrets import KeyEncryptor
from authmesh.store import factors as factor_store
from authmesh.store.models import FactorRow

__all__ = [
    "FactorView",
    "Factors",
    "PasskeyChallenge",
    "TotpEnrolment",
    "confirm_totp",
    "list_factors",
    "new_passkey_challenge",
    "passkey_registration",
    "regenerate_recovery_codes",
    "register_passkey",
    "relying_party",
    "remove_factor",
    "rename_factor",
    "spend_passkey_challenge",
    "start_totp",
    "stored_totp_secret",
    "totp_secret_of",
]

_MAX_NAME = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class FactorView:
    """A factor as the account page and the admin API show it (never its secret)."""

    id: str
    kind: str
    name: str
    created_at: float
    last_used_at: float | None
    passwordless: bool

    def to_json(self) -> dict[str, object]:
        """The JSON object of the admin API."""
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "passwordless": self.passwordless,
        }


@dataclass(frozen=True, slots=True)
class Factors:
    """A user's factors and how many recovery codes are left."""

    factors: list[FactorView]
    recovery_codes_left: int

    @property
    def enabled(self) -> bool:
        """Whether the user signs in with a second factor."""
        return bool(self.factors)

    def to_json(self) -> dict[str, object]:
        """The JSON object of the admin API."""
        return {
            "mfa_enabled": self.enabled,
            "factors": [f.to_json() for f in self.factors],
            "recovery_codes_left": self.recovery_codes_left,
        }


_SEALED = "enc:"


@functools.cache
def _sealer(master_key: str) -> KeyEncryptor:
    return KeyEncryptor(master_key)


def stored_totp_secret(ctx: ServerContext, user_id: str, secret: str) -> str:
    """How a TOTP secret is stored: sealed (AES-GCM, bound to the user) under the master
    key when one is set, so a database read alone does not give the codes."""
    master = ctx.settings.master_key
    if master is None:
        return secret
    sealed = _sealer(master.get_secret_value()).encrypt({"s": secret}, aad=f"totp:{user_id}")
    return _SEALED + sealed


def totp_secret_of(ctx: ServerContext, row: FactorRow) -> str:
    """The TOTP secret of a stored authenticator.

    Raises:
        ConfigError: sealed, and the master key is missing or wrong.
    """
    stored = row.totp_secret or ""
    if not stored.startswith(_SEALED):
        return stored
    master = ctx.settings.master_key
    if master is None:
        raise ConfigError("a TOTP secret is sealed but AUTHMESH_MASTER_KEY is not set")
    opened = _sealer(master.get_secret_value()).decrypt(
        stored[len(_SEALED) :], aad=f"totp:{row.user_id}"
    )
    return str(opened["s"])


def _view(row: FactorRow) -> FactorView:
    return FactorView(
        id=row.id,
        kind=row.kind,
        name=row.name,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        passwordless=bool(row.passwordless),
    )


def _name(name: str, default: str) -> str:
    cleaned = " ".join(name.split())[:_MAX_NAME]
    return cleaned or default


async def list_factors(ctx: ServerContext, user_id: str) -> Factors:
    """The user's factors, oldest first, and their unused recovery codes."""
    async with ctx.db.transaction() as session:
        rows = await factor_store.list_factors(session, user_id)
        left = await factor_store.count_recovery_codes(session, user_id)
    return Factors([_view(r) for r in rows], left)


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    """A TOTP secret offered to the user, with its URI and QR code (not stored yet)."""

    secret: str
    uri: str
    qr_svg: str


def start_totp(ctx: ServerContext, username: str) -> TotpEnrolment:
    """A new secret to scan; nothing is stored until :func:`confirm_totp`."""
    secret = totp.new_totp_secret()
    uri = totp.provisioning_uri(secret, username=username, issuer_name=ctx.settings.realm)
    return TotpEnrolment(secret, uri, totp.qr_svg(uri))


async def _new_codes(ctx: ServerContext, session: AsyncSession, user_id: str) -> list[str]:
    codes = recovery.new_recovery_codes()
    await factor_store.replace_recovery_codes(
        session,
        user_id,
        [recovery.recovery_code_hash(ctx.pepper, c) for c in codes],
        now=ctx.now(),
    )
    return codes


async def confirm_totp(
    ctx: ServerContext,
    user_id: str,
    username: str,
    *,
    secret: str,
    code: str,
    name: str = "",
    info: RequestInfo | None = None,
) -> list[str]:
    """Store a TOTP authenticator once the user proved it works with a code.

    Returns the fresh recovery codes when this is the user's first factor (shown
    once), else an empty list.

    Raises:
        InvalidRequest: the code does not match the secret.
    """
    step = totp.matching_step(secret, code, ctx.now())
    async with ctx.db.transaction() as session:
        if step is None:
            await audit.record(
                ctx,
                session,
                "mfa_enrol",
                outcome="failure",
                info=info,
                subject=username,
                kind="totp",
                reason="bad_code",
            )
    if step is None:
        raise InvalidRequest("that code does not match: check the time on your device")
    async with ctx.db.transaction() as session:
        first = not await factor_store.list_factors(session, user_id)
        row = await factor_store.add_factor(
            session,
            user_id=user_id,
            kind="totp",
            name=_name(name, "Authenticator app"),
            now=ctx.now(),
            totp_secret=stored_totp_secret(ctx, user_id, secret),
            last_step=step,  # the code just typed is spent
        )
        codes = await _new_codes(ctx, session, user_id) if first else []
        await audit.record(
            ctx, session, "mfa_enrol", info=info, subject=username, kind="totp", factor=row.id
        )
    return codes


async def regenerate_recovery_codes(
    ctx: ServerContext, user_id: str, username: str, *, info: RequestInfo | None = None
) -> list[str]:
    """Replace the user's recovery codes with ten new ones (shown once).

    Raises:
        AccessDenied: the user has no factor (recovery codes back one up).
    """
    async with ctx.db.transaction() as session:
        if not await factor_store.list_factors(session, user_id):
            raise AccessDenied("set up an authenticator or a passkey first")
        codes = await _new_codes(ctx, session, user_id)
        await audit.record(ctx, session, "mfa_recovery_codes", info=info, subject=username)
    return codes


async def remove_factor(
    ctx: ServerContext,
    user_id: str,
    username: str,
    factor_id: str,
    *,
    keep_session: str | None,
    info: RequestInfo | None = None,
) -> int:
    """Remove one of the user's factors; every other session of the user ends.

    With the last factor gone, the recovery codes go too. Returns how many
    sessions ended.

    Raises:
        NotFound: no such factor of this user.
    """
    async with ctx.db.transaction() as session:
        removed = await factor_store.delete_factor(session, user_id, factor_id)
        if removed is None:
            await audit.record(
                ctx,
                session,
                "mfa_remove",
                outcome="failure",
                info=info,
                subject=username,
                factor=factor_id[:40],
                reason="not_found",
            )
            cursors: list[int] = []
            ended: list[str] = []
        else:
            if not await factor_store.list_factors(session, user_id):
                await factor_store.delete_user_factors(session, user_id)
            ended = await factor_store.end_other_sessions(
                session, user_id, keep_session, now=ctx.now(), reason="mfa_change"
            )
            cursors = await publish.revoke(ctx, session, "sid", ended)
            await audit.record(
                ctx,
                session,
                "mfa_remove",
                info=info,
                subject=username,
                kind=removed.kind,
                factor=removed.id,
                sessions=len(ended),
            )
    await publish.announce(ctx, cursors)
    if removed is None:
        raise NotFound("no such factor")
    return len(ended)


# --- passkeys -----------------------------------------------------------------


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
                name=_name(name, "Passkey"),
                now=ctx.now(),
                credential_id=verified.credential_id,
                public_key=verified.public_key,
            )
            row.sign_count = verified.sign_count
            row.backed_up = verified.backed_up
            row.passwordless = passwordless
            codes = await _new_codes(ctx, session, user_id) if first else []
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


async def rename_factor(
    ctx: ServerContext,
    user_id: str,
    username: str,
    factor_id: str,
    name: str,
    *,
    info: RequestInfo | None = None,
) -> None:
    """Give a factor a new name.

    Raises:
        NotFound: no such factor of this user.
    """
    async with ctx.db.transaction() as session:
        rows = await factor_store.list_factors(session, user_id)
        row = next((r for r in rows if r.id == factor_id), None)
        if row is None:
            raise NotFound("no such factor")
        row.name = _name(name, row.name)
        await audit.record(ctx, session, "mfa_rename", info=info, subject=username, factor=row.id)
