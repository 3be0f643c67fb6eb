"""Second factors of users: TOTP authenticators, passkeys, recovery codes, WebAuthn challenges."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.models import FactorRow, MfaChallengeRow, RecoveryCodeRow, SessionRow

__all__ = [
    "add_factor",
    "count_recovery_codes",
    "delete_factor",
    "delete_user_factors",
    "end_other_sessions",
    "factor_by_credential",
    "list_factors",
    "replace_recovery_codes",
    "spend_challenge",
    "step_up_session",
    "use_passkey",
    "use_recovery_code",
    "use_totp_step",
    "users_with_factors",
]


async def list_factors(session: AsyncSession, user_id: str) -> list[FactorRow]:
    """A user's factors, oldest first."""
    rows = await session.scalars(
        select(FactorRow).where(FactorRow.user_id == user_id).order_by(FactorRow.created_at)
    )
    return list(rows)


async def users_with_factors(session: AsyncSession, user_ids: Sequence[str]) -> set[str]:
    """Which of these users have at least one factor (one statement for a page of users)."""
    if not user_ids:
        return set()
    rows = await session.scalars(
        select(FactorRow.user_id).where(FactorRow.user_id.in_(list(user_ids))).distinct()
    )
    return set(rows)


async def add_factor(
    session: AsyncSession, *, user_id: str, kind: str, name: str, now: float, **fields: object
) -> FactorRow:
    """Store a confirmed factor."""
    row = FactorRow(
        id=str(uuid.uuid4()),
        user_id=user_id,
        kind=kind,
        name=name,
        created_at=now,
        sign_count=0,
        backed_up=False,
        passwordless=False,
        **fields,
    )
    session.add(row)
    await session.flush()
    return row


async def factor_by_credential(session: AsyncSession, credential_id: str) -> FactorRow | None:
    """The passkey with this (base64url) credential id, whoever it belongs to."""
    return await session.scalar(select(FactorRow).where(FactorRow.credential_id == credential_id))


async def delete_factor(session: AsyncSession, user_id: str, factor_id: str) -> FactorRow | None:
    """Remove one factor of this user; the removed row, or ``None`` if it is not theirs."""
    row = await session.scalar(
        select(FactorRow).where(FactorRow.id == factor_id, FactorRow.user_id == user_id)
    )
    if row is not None:
        await session.delete(row)
        await session.flush()
    return row


async def delete_user_factors(session: AsyncSession, user_id: str) -> int:
    """Remove every factor and recovery code of a user; how many factors there were."""
    result = await session.execute(delete(FactorRow).where(FactorRow.user_id == user_id))
    await session.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


async def use_totp_step(session: AsyncSession, factor_id: str, step: int, *, now: float) -> bool:
    """Record ``step`` as used, if no code of this step or a later one was used before.

    One conditional UPDATE: of two concurrent sign-ins with the same code, one wins.
    """
    result = await session.execute(
        update(FactorRow)
        .where(
            FactorRow.id == factor_id,
            or_(FactorRow.last_step.is_(None), FactorRow.last_step < step),
        )
        .values(last_step=step, last_used_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def use_passkey(
    session: AsyncSession,
    factor_id: str,
    *,
    old_count: int,
    new_count: int,
    now: float,
    backed_up: bool,
) -> bool:
    """Record a passkey's use and its new signature counter, unless another use got in first."""
    result = await session.execute(
        update(FactorRow)
        .where(FactorRow.id == factor_id, FactorRow.sign_count == old_count)
        .values(sign_count=new_count, last_used_at=now, backed_up=backed_up)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def replace_recovery_codes(
    session: AsyncSession, user_id: str, code_hashes: Sequence[str], *, now: float
) -> None:
    """Drop the user's recovery codes and store these (hashed) ones."""
    await session.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.user_id == user_id))
    session.add_all(
        RecoveryCodeRow(code_hash=h, user_id=user_id, created_at=now) for h in code_hashes
    )
    await session.flush()


async def use_recovery_code(
    session: AsyncSession, user_id: str, code_hash: str, *, now: float
) -> bool:
    """Spend one unused recovery code of this user."""
    result = await session.execute(
        update(RecoveryCodeRow)
        .where(
            RecoveryCodeRow.code_hash == code_hash,
            RecoveryCodeRow.user_id == user_id,
            RecoveryCodeRow.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def count_recovery_codes(session: AsyncSession, user_id: str) -> int:
    """How many unused recovery codes the user has left."""
    found = await session.scalar(
        select(func.count())
        .select_from(RecoveryCodeRow)
        .where(RecoveryCodeRow.user_id == user_id, RecoveryCodeRow.used_at.is_(None))
    )
    return int(found or 0)


async def spend_challenge(
    session: AsyncSession,
    challenge_hash: str,
    *,
    purpose: str,
    user_id: str | None,
    expires_at: float,
    now: float,
) -> None:
    """Mark a WebAuthn challenge spent (expired marks are swept here).

    The challenge itself travels signed in the form, so showing a page writes
    nothing; its answer writes this row, and a second answer with the same
    challenge fails on the primary key.

    Raises:
        IntegrityError: the challenge was spent before.
    """
    await session.execute(delete(MfaChallengeRow).where(MfaChallengeRow.expires_at <= now))
    session.add(
        MfaChallengeRow(
            challenge_hash=challenge_hash, purpose=purpose, user_id=user_id, expires_at=expires_at
        )
    )
    await session.flush()


async def end_other_sessions(
    session: AsyncSession, user_id: str, keep: str | None, *, now: float, reason: str
) -> list[str]:
    """End every open session of the user except the browser sign-in ``keep`` and the
    sessions opened from it; the ids ended."""
    query = select(SessionRow.id).where(
        SessionRow.user_id == user_id, SessionRow.ended_at.is_(None)
    )
    if keep is not None:
        query = query.where(
            SessionRow.id != keep,
            or_(SessionRow.parent_id.is_(None), SessionRow.parent_id != keep),
        )
    sids = list(await session.scalars(query))
    if sids:
        await session.execute(
            update(SessionRow)
            .where(SessionRow.id.in_(sids))
            .values(ended_at=now, end_reason=reason)
        )
    return sids


async def step_up_session(
    session: AsyncSession, session_id: str, *, amr: Sequence[str], now: float
) -> None:
    """A browser sign-in passed another factor: its methods grow and its time is now."""
    await session.execute(
        update(SessionRow)
        .where(SessionRow.id == session_id, SessionRow.ended_at.is_(None))
        .values(amr=list(amr), auth_time=now)
    )
