"""Users and their roles."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.models import UserRoleRow, UserRow
from authmesh.store.rows import Statements, detached

__all__ = [
    "count_users",
    "create_user",
    "get_roles",
    "get_roles_of",
    "get_user",
    "get_user_and_roles",
    "get_user_by_id",
    "list_users",
    "search_users",
    "set_roles",
    "username_key",
]


_USERS = UserRow.__table__
_ROLES = UserRoleRow.__table__
# One row per role (one with a NULL role when there is none).
_USER_AND_ROLES = (
    select(_USERS, _ROLES.c.role)
    .select_from(_USERS.outerjoin(_ROLES, _ROLES.c.user_id == _USERS.c.id))
    .where(_USERS.c.username_key == bindparam("key"))
)


def username_key(username: str) -> str:
    """The case-folded form under which a username is unique."""
    return username.strip().casefold()


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    password_hash: str,
    roles: Iterable[str] = (),
    now: float,
    email: str | None = None,
) -> UserRow:
    """Insert a user; the caller checks the name is free (the unique index enforces it)."""
    user = UserRow(
        id=str(uuid.uuid4()),
        username=username.strip(),
        username_key=username_key(username),
        password_hash=password_hash,
        blocked=False,
        created_at=now,
        updated_at=now,
        password_changed_at=now,
        email=email,
    )
    session.add(user)
    await session.flush()
    await set_roles(session, user.id, roles)
    return user


async def get_user(
    session: AsyncSession, username: str, *, for_update: bool = False
) -> UserRow | None:
    """The user with this username (case-insensitive), or ``None``."""
    stmt = select(UserRow).where(UserRow.username_key == username_key(username))
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_user_and_roles(
    session: AsyncSession, username: str
) -> tuple[UserRow | None, list[str]]:
    """The user with this username and their sorted roles, in one query; ``(None, [])``.

    The user comes detached (a Core select, read on every login): change users
    through this module's functions, not through the returned object.
    """
    rows = (await session.execute(_USER_AND_ROLES, {"key": username_key(username)})).all()
    if not rows:
        return None, []
    user = detached(
        UserRow, {name: value for name, value in rows[0]._mapping.items() if name != "role"}
    )
    return user, sorted(row.role for row in rows if row.role is not None)


async def get_user_by_id(
    session: AsyncSession, user_id: str, *, for_update: bool = False
) -> UserRow | None:
    """The user with this id, or ``None``."""
    stmt = select(UserRow).where(UserRow.id == user_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_users(
    session: AsyncSession, *, offset: int = 0, limit: int = 100
) -> Sequence[UserRow]:
    """Users ordered by username."""
    stmt = select(UserRow).order_by(UserRow.username_key).offset(offset).limit(limit)
    return (await session.execute(stmt)).scalars().all()


def _contains(text: str) -> str:
    """A LIKE pattern (escape ``\\``) matching values that contain ``text`` literally."""
    for special in ("\\", "%", "_"):
        text = text.replace(special, "\\" + special)
    return f"%{text}%"


async def search_users(
    session: AsyncSession, query: str, *, offset: int = 0, limit: int = 20
) -> tuple[Sequence[UserRow], int]:
    """Users whose username or email contains ``query`` (case-insensitive), by name,
    and how many match in all."""
    stmt = select(UserRow)
    counted = select(func.count()).select_from(UserRow)
    if query:
        pattern = _contains(query.casefold())
        match = UserRow.username_key.like(pattern, escape="\\") | func.lower(
            func.coalesce(UserRow.email, "")
        ).like(pattern, escape="\\")
        stmt = stmt.where(match)
        counted = counted.where(match)
    rows = (
        (await session.execute(stmt.order_by(UserRow.username_key).offset(offset).limit(limit)))
        .scalars()
        .all()
    )
    total = int((await session.execute(counted)).scalar_one())
    return rows, total


async def get_roles_of(session: AsyncSession, user_ids: Sequence[str]) -> dict[str, list[str]]:
    """The sorted roles of each of ``user_ids`` in one query (users without any are absent)."""
    if not user_ids:
        return {}
    stmt = (
        select(UserRoleRow.user_id, UserRoleRow.role)
        .where(UserRoleRow.user_id.in_(list(user_ids)))
        .order_by(UserRoleRow.role)
    )
    found: dict[str, list[str]] = {}
    for user_id, role in (await session.execute(stmt)).all():
        found.setdefault(user_id, []).append(role)
    return found


async def count_users(session: AsyncSession) -> int:
    """How many users exist."""
    return int((await session.execute(select(func.count()).select_from(UserRow))).scalar_one())


async def get_roles(session: Statements, user_id: str) -> list[str]:
    """The user's roles, sorted."""
    stmt = select(UserRoleRow.role).where(UserRoleRow.user_id == user_id).order_by(UserRoleRow.role)
    return list((await session.execute(stmt)).scalars().all())


async def set_roles(session: AsyncSession, user_id: str, roles: Iterable[str]) -> list[str]:
    """Replace the user's roles; returns the new sorted list."""
    wanted = sorted(set(roles))
    await session.execute(delete(UserRoleRow).where(UserRoleRow.user_id == user_id))
    session.add_all(UserRoleRow(user_id=user_id, role=role) for role in wanted)
    await session.flush()
    return wanted
