"""Authorization codes (RFC 6749 §4.1): stored by hash, used once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.models import AuthorizationCodeRow, SessionRow, UserRoleRow, UserRow
from authmesh.store.rows import detached

__all__ = [
    "Exchange",
    "add_code",
    "load_exchange",
    "prune_codes",
    "use_code",
]

_CODES = AuthorizationCodeRow.__table__


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """What a code exchange needs in one read: the code, its browser sign-in and its user.

    A plain value, not an ORM row: it is built on every exchange. The ``browser_*``
    fields are ``None`` when the browser session no longer exists.
    """

    code_hash: str
    client_id: str
    browser_session_id: str
    redirect_uri: str
    scope: str
    audiences: list[str]
    nonce: str | None
    code_challenge: str
    expires_at: float
    used_at: float | None
    session_id: str | None
    browser_ended_at: float | None
    browser_expires_at: float | None
    browser_auth_time: float | None
    browser_amr: list[str] | None
    user: UserRow
    roles: list[str]


# One statement instead of four (code, browser session, user, roles), as the
# refresh grant reads its token. Only the code row is locked: concurrent
# exchanges of one code contend for it (PostgreSQL; SQLite's BEGIN IMMEDIATE
# already serializes the writers). The browser session has no foreign key, so
# it is outer-joined; the user is (ON DELETE CASCADE), so it is always there.
# The code's columns, in the order of Exchange's first fields.
_CODE_COLUMNS = (
    _CODES.c.code_hash,
    _CODES.c.client_id,
    _CODES.c.browser_session_id,
    _CODES.c.redirect_uri,
    _CODES.c.scope,
    _CODES.c.audiences,
    _CODES.c.nonce,
    _CODES.c.code_challenge,
    _CODES.c.expires_at,
    _CODES.c.used_at,
    _CODES.c.session_id,
)
_LOAD_EXCHANGE = (
    select(
        *_CODE_COLUMNS,
        _CODES.c.user_id,
        SessionRow.ended_at,
        SessionRow.expires_at,
        SessionRow.auth_time,
        SessionRow.amr,
        UserRow.username,
        UserRow.blocked,
        UserRow.email,
        UserRoleRow.role,
    )
    .select_from(AuthorizationCodeRow)
    .join(UserRow, UserRow.id == AuthorizationCodeRow.user_id)
    .outerjoin(SessionRow, SessionRow.id == AuthorizationCodeRow.browser_session_id)
    .outerjoin(UserRoleRow, UserRoleRow.user_id == UserRow.id)
    .where(AuthorizationCodeRow.code_hash == bindparam("code_hash"))
    .with_for_update(of=AuthorizationCodeRow)
)
_USE_CODE = (
    update(_CODES)
    .where(_CODES.c.code_hash == bindparam("h"), _CODES.c.used_at.is_(None))
    .values(used_at=bindparam("now"), session_id=bindparam("sid"))
)


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


async def load_exchange(session: AsyncSession, code_hash: str) -> Exchange | None:
    """The code with its browser sign-in, user and roles, the code row locked; or ``None``."""
    rows = (await session.execute(_LOAD_EXCHANGE, {"code_hash": code_hash})).all()
    if not rows:
        return None
    first = rows[0]
    n = len(_CODE_COLUMNS)
    code = {c.key: first[i] for i, c in enumerate(_CODE_COLUMNS)}
    user_id, ended_at, expires_at, auth_time, amr, username, blocked, email = first[n : n + 8]
    return Exchange(
        **code,
        browser_ended_at=ended_at,
        browser_expires_at=expires_at,
        browser_auth_time=auth_time,
        browser_amr=None if amr is None else list(amr),
        user=detached(
            UserRow, {"id": user_id, "username": username, "blocked": bool(blocked), "email": email}
        ),
        roles=sorted(row[-1] for row in rows if row[-1] is not None),
    )


async def use_code(
    session: AsyncSession, code_hash: str, *, now: float, session_id: str | None
) -> bool:
    """Mark the code used, once, naming the session its exchange opens (if any).

    Whether this call was the one that did it.
    """
    result = await session.execute(_USE_CODE, {"h": code_hash, "now": now, "sid": session_id})
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def prune_codes(session: AsyncSession, *, before: float) -> int:
    """Delete codes that expired before ``before``; how many."""
    result = await session.execute(delete(_CODES).where(_CODES.c.expires_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]
