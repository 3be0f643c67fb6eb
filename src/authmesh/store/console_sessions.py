"""The web consoles' sessions: an open session named by a console cookie, with its user."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.models import SessionRow, UserRoleRow, UserRow

__all__ = ["ConsoleSignIn", "load_console_sign_in"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleSignIn:
    """An open console session, its user and the user's roles as they are now."""

    session_id: str
    parent_id: str | None
    auth_time: float
    user_id: str
    username: str
    email: str | None
    blocked: bool
    roles: frozenset[str]


# One row per role (one with a NULL role when the user has none).
_LOAD = (
    select(
        SessionRow.id,
        SessionRow.parent_id,
        SessionRow.auth_time,
        UserRow.id,
        UserRow.username,
        UserRow.email,
        UserRow.blocked,
        UserRoleRow.role,
    )
    .join(UserRow, UserRow.id == SessionRow.user_id)
    .outerjoin(UserRoleRow, UserRoleRow.user_id == UserRow.id)
    .where(
        SessionRow.console_secret_hash == bindparam("secret_hash"),
        SessionRow.ended_at.is_(None),
        SessionRow.expires_at > bindparam("now"),
    )
)


async def load_console_sign_in(
    session: AsyncSession, secret_hash: str, *, now: float
) -> ConsoleSignIn | None:
    """The open console session with this cookie hash, or ``None``."""
    rows = (await session.execute(_LOAD, {"secret_hash": secret_hash, "now": now})).all()
    if not rows:
        return None
    first = rows[0]
    return ConsoleSignIn(
        session_id=first[0],
        parent_id=first[1],
        auth_time=first[2],
        user_id=first[3],
        username=first[4],
        email=first[5],
        blocked=bool(first[6]),
        roles=frozenset(row[7] for row in rows if row[7] is not None),
    )
