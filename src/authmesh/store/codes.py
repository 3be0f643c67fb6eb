"""Authorization codes (RFC 6749 §4.1): stored by hash, used once."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.models import AuthorizationCodeRow

__all__ = ["add_code", "bind_session", "load_code", "mark_code_used", "prune_codes"]

_CODES = AuthorizationCodeRow.__table__


async def add_code(
    session: AsyncSession,
    *,
    code_hash: str,
    client_id: str,
    user_id: str,
    browser_session_id: str,
    redirect_uri: str,
    scope: str,
    audiences: Sequence[str],
    nonce: str | None,
    code_challenge: str,
    now: float,
    expires_at: float,
) -> None:
    """Store a new code."""
    await session.execute(
        insert(_CODES),
        {
            "code_hash": code_hash,
            "client_id": client_id,
            "user_id": user_id,
            "browser_session_id": browser_session_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "audiences": list(audiences),
            "nonce": nonce,
            "code_challenge": code_challenge,
            "created_at": now,
            "expires_at": expires_at,
        },
    )


async def load_code(session: AsyncSession, code_hash: str) -> AuthorizationCodeRow | None:
    """The code with this hash, its row locked against a concurrent exchange; or ``None``."""
    stmt = (
        select(AuthorizationCodeRow)
        .where(AuthorizationCodeRow.code_hash == code_hash)
        .with_for_update()
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def mark_code_used(session: AsyncSession, code_hash: str, *, now: float) -> bool:
    """Mark the code used, once: whether this call was the one that did it."""
    result = await session.execute(
        update(_CODES)
        .where(_CODES.c.code_hash == code_hash, _CODES.c.used_at.is_(None))
        .values(used_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def bind_session(session: AsyncSession, code_hash: str, session_id: str) -> None:
    """Remember which session the code's exchange opened."""
    await session.execute(
        update(_CODES).where(_CODES.c.code_hash == code_hash).values(session_id=session_id)
    )


async def prune_codes(session: AsyncSession, *, before: float) -> int:
    """Delete codes that expired before ``before``; how many."""
    result = await session.execute(delete(_CODES).where(_CODES.c.expires_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]
