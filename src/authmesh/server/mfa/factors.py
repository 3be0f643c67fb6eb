"""A user's own factors: list, rename, remove; the enrolments live in their own modules
(:mod:`.totp_enrolment`, :mod:`.passkey_factors`, :mod:`.enrolment`) and are re-exported here.

Every change is audited; removing a factor ends the user's other sessions
through the revocation feed (the browser sign-in that asked keeps going).
"""

from __future__ import annotations

from dataclasses import dataclass

from authmesh.server import audit
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.errors import NotFound
from authmesh.server.feed import publish
from authmesh.server.mfa.enrolment import factor_name, regenerate_recovery_codes
from authmesh.server.mfa.passkey_factors import (
    PasskeyChallenge,
    new_passkey_challenge,
    passkey_registration,
    register_passkey,
    relying_party,
    spend_passkey_challenge,
)
from authmesh.server.mfa.totp_enrolment import TotpEnrolment, confirm_totp, start_totp
from authmesh.server.mfa.totp_sealing import stored_totp_secret, totp_secret_of
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


def _view(row: FactorRow) -> FactorView:
    return FactorView(
        id=row.id,
        kind=row.kind,
        name=row.name,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        passwordless=bool(row.passwordless),
    )


async def list_factors(ctx: ServerContext, user_id: str) -> Factors:
    """The user's factors, oldest first, and their unused recovery codes."""
    async with ctx.db.transaction() as session:
        rows = await factor_store.list_factors(session, user_id)
        left = await factor_store.count_recovery_codes(session, user_id)
    return Factors([_view(r) for r in rows], left)


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
        row.name = factor_name(name, row.name)
        await audit.record(ctx, session, "mfa_rename", info=info, subject=username, factor=row.id)
