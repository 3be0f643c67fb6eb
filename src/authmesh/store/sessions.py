"""Login sessions and their rotating refresh tokens."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, Unpack

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.models import RefreshTokenRow, SessionRow, UserRoleRow, UserRow
from authmesh.store.rows import Statements, detached

__all__ = [
    "NewSession",
    "Rotation",
    "add_refresh_token",
    "attach_console_secret",
    "create_session",
    "end_browser_session",
    "end_client_sessions",
    "end_session",
    "end_user_sessions",
    "get_refresh_token",
    "get_session",
    "get_user_session",
    "insert_session",
    "load_rotation",
    "mark_refresh_used",
    "new_session_id",
    "open_sessions",
    "reread_use",
    "session_values",
    "touch_session",
]

_RT = RefreshTokenRow.__table__
_SESSIONS = SessionRow.__table__


@dataclass(frozen=True, slots=True, kw_only=True)
class Rotation:
    """What a refresh needs in one read: the token, its session, the user and their roles."""

    used_at: float | None
    expires_at: float
    successor_hash: str | None
    session_id: str
    client_id: str
    scope: str
    audiences: list[str]
    auth_time: float
    session_expires_at: float
    ended_at: float | None
    user_id: str
    username: str
    blocked: bool
    roles: list[str]
    dpop_jkt: str | None = None
    """The DPoP key the session's refresh tokens are bound to (a public client's)."""
    amr: list[str] | None = None
    """The session's sign-in methods, so a refreshed access token keeps its ``acr``."""


# One statement instead of four (token, session, user, roles). The outer join on
# roles gives one row per role (one row with NULL when there is none). The token
# row and its session row are locked (PostgreSQL; SQLite's BEGIN IMMEDIATE already
# serializes the writers): every rotation, retry and reuse of a session's tokens
# queues on the session row, so concurrent replays, even of two different tokens
# of one session, end it once, with one revocation event and one audit row. A
# waiter reads the two locked rows as committed by the one it waited for; other
# rows, as of the statement's start (read anything else afterwards, see reread_use).
_LOAD_ROTATION = (
    select(
        RefreshTokenRow.used_at,
        RefreshTokenRow.expires_at,
        RefreshTokenRow.successor_hash,
        SessionRow.id,
        SessionRow.client_id,
        SessionRow.scope,
        SessionRow.audiences,
        SessionRow.auth_time,
        SessionRow.expires_at,
        SessionRow.ended_at,
        UserRow.id,
        UserRow.username,
        UserRow.blocked,
        UserRoleRow.role,
        SessionRow.dpop_jkt,
        SessionRow.amr,
    )
    .select_from(RefreshTokenRow)
    .join(SessionRow, SessionRow.id == RefreshTokenRow.session_id)
    .join(UserRow, UserRow.id == SessionRow.user_id)
    .outerjoin(UserRoleRow, UserRoleRow.user_id == UserRow.id)
    .where(RefreshTokenRow.token_hash == bindparam("token_hash"))
    .with_for_update(of=[RefreshTokenRow, SessionRow])
)
_REREAD_USE = select(RefreshTokenRow.used_at, RefreshTokenRow.successor_hash).where(
    RefreshTokenRow.token_hash == bindparam("token_hash")
)
_MARK_USED = (
    update(_RT)
    .where(_RT.c.token_hash == bindparam("h"), _RT.c.used_at.is_(None))
    .values(used_at=bindparam("now"), successor_hash=bindparam("successor"))
)
_TOUCH_SESSION = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("sid"))
    .values(last_used_at=bindparam("now"))
)


def new_session_id() -> str:
    """A fresh session id (the ``sid`` of its tokens)."""
    return str(uuid.uuid4())


class NewSession(TypedDict):
    """What opens a session (:func:`session_values`, :func:`create_session`)."""

    user_id: str
    client_id: str
    scope: str
    audiences: Sequence[str]
    now: float
    expires_at: float
    auth_time: NotRequired[float | None]
    """When the user signed in (default: ``now``)."""
    parent_id: NotRequired[str | None]
    browser_secret_hash: NotRequired[str | None]
    amr: NotRequired[Sequence[str] | None]
    session_id: NotRequired[str | None]
    """The id to give it, when the caller had to name it first."""
    client_ip: NotRequired[str | None]
    user_agent: NotRequired[str | None]
    dpop_jkt: NotRequired[str | None]


def session_values(**fields: Unpack[NewSession]) -> dict[str, Any]:
    """The columns of a new session (see :func:`create_session`)."""
    now = fields["now"]
    auth_time = fields.get("auth_time")
    amr = fields.get("amr")
    user_agent = fields.get("user_agent")
    return {
        "id": fields.get("session_id") or new_session_id(),
        "user_id": fields["user_id"],
        "client_id": fields["client_id"],
        "scope": fields["scope"],
        "audiences": list(fields["audiences"]),
        "auth_time": now if auth_time is None else auth_time,
        "last_used_at": now,
        "expires_at": fields["expires_at"],
        "parent_id": fields.get("parent_id"),
        "browser_secret_hash": fields.get("browser_secret_hash"),
        "amr": None if amr is None else list(amr),
        "client_ip": fields.get("client_ip"),
        "user_agent": None if user_agent is None else user_agent[:300],
        "dpop_jkt": fields.get("dpop_jkt"),
    }


async def create_session(session: AsyncSession, **fields: Unpack[NewSession]) -> SessionRow:
    """Open a session: a login, a browser sign-in, or one client's share of a sign-in."""
    values = session_values(**fields)
    await insert_session(session, values)
    return detached(SessionRow, values)


# Built once: a statement made per call would have its cache key computed per call.
_INSERT_SESSION = insert(_SESSIONS)
_ADD_REFRESH_TOKEN = insert(_RT)


async def insert_session(session: Statements, values: dict[str, Any]) -> None:
    """Store a session made of :func:`session_values`."""
    # A Core insert: the ORM's unit of work costs more than the row (no identity
    # map entry is needed, the caller only reads the values back).
    await session.execute(_INSERT_SESSION, values)


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


async def end_browser_session(
    session: AsyncSession, browser_sid: str, *, now: float, reason: str
) -> list[str]:
    """End a browser sign-in and every open session opened from it; returns their ids."""
    stmt = select(SessionRow.id).where(
        (SessionRow.id == browser_sid) | (SessionRow.parent_id == browser_sid),
        SessionRow.ended_at.is_(None),
    )
    sids = list((await session.execute(stmt)).scalars().all())
    await _end(session, sids, now=now, reason=reason)
    return sids


async def end_client_sessions(
    session: AsyncSession, user_id: str, client_id: str, *, now: float, reason: str
) -> list[str]:
    """End the user's open sessions of one client (not browser sign-ins); returns their ids."""
    stmt = select(SessionRow.id).where(
        SessionRow.user_id == user_id,
        SessionRow.client_id == client_id,
        SessionRow.browser_secret_hash.is_(None),
        SessionRow.ended_at.is_(None),
    )
    sids = list((await session.execute(stmt)).scalars().all())
    await _end(session, sids, now=now, reason=reason)
    return sids


async def _end(session: AsyncSession, sids: list[str], *, now: float, reason: str) -> None:
    if sids:
        await session.execute(
            update(SessionRow)
            .where(SessionRow.id.in_(sids), SessionRow.ended_at.is_(None))
            .values(ended_at=now, end_reason=reason)
        )


async def end_user_sessions(
    session: AsyncSession, user_id: str, *, now: float, reason: str
) -> list[str]:
    """End every open session of a user; returns their ids."""
    sids = [row.id for row in await open_sessions(session, user_id, now)]
    await _end(session, sids, now=now, reason=reason)
    return sids


async def add_refresh_token(
    session: Statements, *, token_hash: str, session_id: str, now: float, expires_at: float
) -> None:
    """Store a new refresh token (by hash)."""
    values = {
        "token_hash": token_hash,
        "session_id": session_id,
        "created_at": now,
        "expires_at": expires_at,
    }
    await session.execute(_ADD_REFRESH_TOKEN, values)


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
        _MARK_USED, {"h": token_hash, "now": now, "successor": successor_hash}
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def load_rotation(session: AsyncSession, token_hash: str) -> Rotation | None:
    """The refresh token with its session, user and roles; or ``None``.

    The token and session rows are locked (see ``_LOAD_ROTATION``). ``None``
    also when the session or the user no longer exists.
    """
    rows = (await session.execute(_LOAD_ROTATION, {"token_hash": token_hash})).all()
    if not rows:
        return None
    first = rows[0]
    return Rotation(
        used_at=first[0],
        expires_at=first[1],
        successor_hash=first[2],
        session_id=first[3],
        client_id=first[4],
        scope=first[5],
        audiences=list(first[6]),
        auth_time=first[7],
        session_expires_at=first[8],
        ended_at=first[9],
        user_id=first[10],
        username=first[11],
        blocked=bool(first[12]),
        roles=sorted(row[13] for row in rows if row[13] is not None),
        dpop_jkt=first[14],
        amr=list(first[15]) if first[15] else None,
    )


async def reread_use(session: AsyncSession, token_hash: str) -> tuple[float | None, str | None]:
    """``(used_at, successor_hash)`` of a refresh token as committed now.

    A statement of its own, so under the locks of :func:`load_rotation` it sees
    what the transactions it waited for committed.
    """
    row = (await session.execute(_REREAD_USE, {"token_hash": token_hash})).first()
    return (None, None) if row is None else (row[0], row[1])


async def touch_session(session: AsyncSession, sid: str, *, now: float) -> None:
    """Record that the session was just used (a refresh)."""
    await session.execute(_TOUCH_SESSION, {"sid": sid, "now": now})


async def get_user_session(session: AsyncSession, user_id: str, sid: str) -> SessionRow | None:
    """The session ``sid`` if it belongs to ``user_id``; ``None`` for anyone else's."""
    stmt = select(SessionRow).where(SessionRow.id == sid, SessionRow.user_id == user_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def attach_console_secret(
    session: AsyncSession, sid: str, secret_hash: str, *, now: float
) -> bool:
    """Name an open session by a console cookie's secret hash; whether it was open."""
    result = await session.execute(
        update(SessionRow)
        .where(SessionRow.id == sid, SessionRow.ended_at.is_(None), SessionRow.expires_at > now)
        .values(console_secret_hash=secret_hash)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
