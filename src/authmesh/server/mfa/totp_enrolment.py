"""Enrolling a TOTP authenticator: a secret offered to scan, stored once a code proves it."""

from __future__ import annotations

from dataclasses import dataclass

from authmesh.server import audit
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.errors import InvalidRequest
from authmesh.server.mfa import totp
from authmesh.server.mfa.enrolment import factor_name, issue_recovery_codes
from authmesh.server.mfa.totp_sealing import stored_totp_secret
from authmesh.store import factors as factor_store

__all__ = ["TotpEnrolment", "confirm_totp", "start_totp"]


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
            name=factor_name(name, "Authenticator app"),
            now=ctx.now(),
            totp_secret=stored_totp_secret(ctx, user_id, secret),
            last_step=step,  # the code just typed is spent
        )
        codes = await issue_recovery_codes(ctx, session, user_id) if first else []
        await audit.record(
            ctx, session, "mfa_enrol", info=info, subject=username, kind="totp", factor=row.id
        )
    return codes
