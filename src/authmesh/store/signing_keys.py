"""Signing keys as stored: publication, activation, retirement and expiry times."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.models import SigningKeyRow

__all__ = ["add_key", "all_keys", "published_keys", "replace_private_key", "retire_keys_before"]


async def add_key(
    session: AsyncSession,
    *,
    kid: str,
    alg: str,
    public_jwk: dict[str, Any],
    private_jwk: str,
    encrypted: bool,
    published_at: float,
    activates_at: float,
) -> SigningKeyRow:
    """Store a new key."""
    row = SigningKeyRow(
        kid=kid,
        alg=alg,
        public_jwk=public_jwk,
        private_jwk=private_jwk,
        encrypted=encrypted,
        published_at=published_at,
        activates_at=activates_at,
    )
    session.add(row)
    await session.flush()
    return row


async def all_keys(session: AsyncSession) -> Sequence[SigningKeyRow]:
    """Every key ever stored, oldest activation first."""
    stmt = select(SigningKeyRow).order_by(SigningKeyRow.activates_at, SigningKeyRow.kid)
    return (await session.execute(stmt)).scalars().all()


async def published_keys(session: AsyncSession, now: float) -> Sequence[SigningKeyRow]:
    """Keys that belong in the JWKS now: published and not yet expired."""
    stmt = (
        select(SigningKeyRow)
        .where(
            SigningKeyRow.published_at <= now,
            or_(SigningKeyRow.expires_at.is_(None), SigningKeyRow.expires_at > now),
        )
        .order_by(SigningKeyRow.activates_at, SigningKeyRow.kid)
    )
    return (await session.execute(stmt)).scalars().all()


async def retire_keys_before(
    session: AsyncSession, *, activates_at: float, retires_at: float, expires_at: float
) -> None:
    """Schedule every not-yet-retired key that activates earlier to stop signing."""
    await session.execute(
        update(SigningKeyRow)
        .where(SigningKeyRow.activates_at < activates_at, SigningKeyRow.retires_at.is_(None))
        .values(retires_at=retires_at, expires_at=expires_at)
    )


async def replace_private_key(
    session: AsyncSession, *, kid: str, private_jwk: str, encrypted: bool
) -> int:
    """Store a plaintext key's private part in a new form (sealed); 1 if it was still plain.

    Only a row still in plaintext changes, so two processes sealing at once
    leave one sealed form, not a mix.
    """
    result = await session.execute(
        update(SigningKeyRow)
        .where(SigningKeyRow.kid == kid, SigningKeyRow.encrypted.is_(False))
        .values(private_jwk=private_jwk, encrypted=encrypted)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
