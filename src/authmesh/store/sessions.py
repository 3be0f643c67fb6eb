"""Login sessions and their rotating refresh tokens."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.models import RefreshTokenRow, SessionRow

__all__ = [
    "add_refresh_token",
    "create_session",
    "end_session",
    "end_user_sessions",
    "get_refresh_token",
    "get_session",
    "mark_refresh_used",
    "open_sessions",
]


async def create_session(
    session: AsyncSession,
    *,
    user_id: str,
    client_id: str,
    scope: str,
    audiences: Sequence[str],
    now: float,
    expires_at: float,
) -> SessionRow:
    """Open a session."""
    row = SessionRow(
        id=str(uuid.uuid4()),
        user_id=user_id,
        client_id=client_id,
        scope=scope,
        audiences=list(audiences),
        auth_time=now,
        last_used_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    return row


async def get_session(session: AsyncSession, sid: str) -> SessionRow | None:
    """The session, or ``None``."""
    return await session.get(SessionRow, sid)


async def open_sessions(session: AsyncSession, user_id: str, now: float) -> Sequence[SessionRow]:
    """The user's sessions that have not ended."""
    stmt = select(SessionRow).where(
        SessionRow.user_id == user_id,
        SessionRow.ended_at.is_(None),
        SessionRow.expires_at > now,
    )
    return (await session.execute(stmt)).scalars().all()


async def end_session(session: AsyncSession, sid: str, *, now: float, reason: str) -> bool:
    """End one session; whether it was open."""
    result = await session.execute(
        update(SessionRow)
        .where(SessionRow.id == sid, SessionRow.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def end_user_sessions(
    session: AsyncSession, user_id: str, *, now: float, reason: str
) -> list[str]:
    """End every open session of a user; returns their ids."""
    sids = [row.id for row in await open_sessions(session, user_id, now)]
    if sids:
        await session.execute(
            update(SessionRow)
            .where(SessionRow.id.in_(sids), SessionRow.ended_at.is_(None))
            .values(ended_at=now, end_reason=reason)
        )
    return sids


async def add_refresh_token(
    session: AsyncSession, *, token_hash: str, session_id: str, now: float, expires_at: float
) -> RefreshTokenRow:
    """Store a new refresh token (by hash)."""
    row = RefreshTokenRow(
        token_hash=token_hash, session_id=session_id, created_at=now, expires_at=expires_at
    )
    session.add(row)
    await session.flush()
    return row


async def get_refresh_token(
    session: AsyncSession, token_hash: str, *, for_update: bool = False
) -> RefreshTokenRow | None:
    """The refresh token with this hash, locked for the rotation when asked."""
    stmt = select(RefreshTokenRow).where(RefreshTokenRow.token_hash == token_hash)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def mark_refresh_used(
    session: AsyncSession, token_hash: str, *, now: float, successor_hash: str
) -> bool:
    """Mark a refresh token used, once: whether this call was the one that did it.

    The conditional update is what makes rotation safe under concurrency: of two
    requests with the same token, exactly one sees ``rowcount == 1``.
    """
    result = await session.execute(
        update(RefreshTokenRow)
        .where(RefreshTokenRow.token_hash == token_hash, RefreshTokenRow.used_at.is_(None))
        .values(used_at=now, successor_hash=successor_hash)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
