"""Authorization codes (RFC 6749 §4.1): stored by hash, used once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Insert, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.clients import CLIENT_COLUMNS, client_of
from authmesh.store.models import (
    AuthorizationCodeRow,
    ClientRow,
    RefreshTokenRow,
    SessionRow,
    UserRoleRow,
    UserRow,
)
from authmesh.store.rows import Statements, detached

__all__ = [
    "Exchange",
    "add_code",
    "load_client_and_exchange",
    "load_use",
    "prune_codes",
    "use_code",
    "use_code_opening",
]

# Table columns only: a statement naming a mapped class's attribute runs through the
# ORM's compile and result layers, which cost more than the row.
_CODES = AuthorizationCodeRow.__table__
_CLIENTS = ClientRow.__table__
_SESSIONS = SessionRow.__table__
_USERS = UserRow.__table__
_ROLES = UserRoleRow.__table__
_RT = RefreshTokenRow.__table__


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


# One statement instead of five (client, code, browser session, user, roles): the
# client the request names, outer-joined with the code it presents, so the client
# comes back without one. The browser session has no foreign key, so it is
# outer-joined; the user is (ON DELETE CASCADE), so it is there with the code.
# Nothing is locked (PostgreSQL refuses FOR UPDATE on the outer side of a join):
# the UPDATE that uses the code is the one place a code is used, so of two
# concurrent exchanges one uses it and the other, whose UPDATE waited on the
# first and found the code used, reads who used it (load_use) and ends that
# session as a replay. SQLite's BEGIN IMMEDIATE serializes the writers anyway.
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
_EXCHANGE = (
    _CODES.join(_USERS, _USERS.c.id == _CODES.c.user_id)
    .outerjoin(_SESSIONS, _SESSIONS.c.id == _CODES.c.browser_session_id)
    .outerjoin(_ROLES, _ROLES.c.user_id == _USERS.c.id)
)
_LOAD_CLIENT_AND_EXCHANGE = (
    select(
        *CLIENT_COLUMNS,
        *_CODE_COLUMNS,
        _CODES.c.user_id,
        _SESSIONS.c.ended_at,
        _SESSIONS.c.expires_at,
        _SESSIONS.c.auth_time,
        _SESSIONS.c.amr,
        _USERS.c.username,
        _USERS.c.blocked,
        _USERS.c.email,
        _ROLES.c.role,
    )
    .select_from(_CLIENTS.outerjoin(_EXCHANGE, _CODES.c.code_hash == bindparam("code_hash")))
    .where(_CLIENTS.c.client_id == bindparam("client_id"))
)
_LOAD_USE = select(_CODES.c.used_at, _CODES.c.session_id).where(
    _CODES.c.code_hash == bindparam("code_hash")
)
_USE_CODE = (
    update(_CODES)
    .where(_CODES.c.code_hash == bindparam("h"), _CODES.c.used_at.is_(None))
    .values(used_at=bindparam("now"), session_id=bindparam("sid"))
)


# Built once: a statement made per call would have its cache key computed per call.
_ADD_CODE = insert(_CODES)


async def add_code(
    session: Statements,
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
        _ADD_CODE,
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


async def load_client_and_exchange(
    session: Statements, client_id: str, code_hash: str | None
) -> tuple[ClientRow | None, Exchange | None]:
    """The client (detached) and the code with this hash, with its browser sign-in,
    user and roles, in one statement; ``None`` for either. Nothing is locked: use the
    code with :func:`use_code`, whose answer is the one that counts."""
    params = {"client_id": client_id, "code_hash": code_hash}
    rows = (await session.execute(_LOAD_CLIENT_AND_EXCHANGE, params)).all()
    if not rows:
        return None, None
    first = rows[0]
    c = len(CLIENT_COLUMNS)
    if first[c] is None:
        return client_of(first), None
    n = c + len(_CODE_COLUMNS)
    code = {col.key: first[c + i] for i, col in enumerate(_CODE_COLUMNS)}
    user_id, ended_at, expires_at, auth_time, amr, username, blocked, email = first[n : n + 8]
    return client_of(first), Exchange(
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


async def load_use(session: Statements, code_hash: str) -> tuple[float | None, str | None]:
    """When the code was used and the session its exchange opened (``None`` for either),
    as committed now: for the exchange whose :func:`use_code` found it used already."""
    row = (await session.execute(_LOAD_USE, {"code_hash": code_hash})).first()
    return (None, None) if row is None else (row[0], row[1])


async def use_code(
    session: Statements, code_hash: str, *, now: float, session_id: str | None
) -> bool:
    """Mark the code used, once, naming the session its exchange opens (if any).

    Whether this call was the one that did it.
    """
    result = await session.execute(_USE_CODE, {"h": code_hash, "now": now, "sid": session_id})
    return bool(result.rowcount)  # type: ignore[union-attr]


def _use_code_opening(with_refresh: bool) -> Insert:
    """PostgreSQL: one statement that uses the code, opens the session its exchange
    names (the parameters ``s_<column>``) and, ``with_refresh``, stores the session's
    refresh token (``rt_<column>``); each only if the one before it happened."""
    used = _USE_CODE.returning(_CODES.c.session_id).cte("used")
    columns = [c for c in _SESSIONS.c if c.key in _SESSION_KEYS]
    opened = (
        insert(_SESSIONS)
        .from_select(
            [c.key for c in columns],
            select(*(bindparam(f"s_{c.key}", type_=c.type) for c in columns)).select_from(used),
        )
        .returning(_SESSIONS.c.id)
    )
    if not with_refresh:
        return opened
    session = opened.cte("opened")
    token = (_RT.c.token_hash, _RT.c.created_at, _RT.c.expires_at)
    return (
        insert(_RT)
        .from_select(
            [*(c.key for c in token), "session_id"],
            select(*(bindparam(f"rt_{c.key}", type_=c.type) for c in token), session.c.id),
        )
        .returning(_RT.c.token_hash)
    )


_SESSION_KEYS = frozenset(
    (
        "id user_id client_id scope audiences auth_time last_used_at expires_at parent_id "
        "browser_secret_hash amr client_ip user_agent dpop_jkt"
    ).split()
)
_USE_CODE_OPENING = {refresh: _use_code_opening(refresh) for refresh in (False, True)}


async def use_code_opening(
    session: Statements,
    code_hash: str,
    *,
    now: float,
    opening: Mapping[str, Any],
    refresh: Mapping[str, Any] | None,
) -> bool:
    """:func:`use_code`, then the session its exchange opens (``opening``: its columns, as
    :func:`~authmesh.store.sessions.session_values` gives them) and its refresh token
    (``token_hash``, ``created_at``, ``expires_at``), in one statement of PostgreSQL's
    (one round trip instead of three). Whether this call used the code; nothing else
    is stored when it did not."""
    params: dict[str, Any] = {"h": code_hash, "now": now, "sid": opening["id"]}
    params.update({f"s_{k}": v for k, v in opening.items()})
    if refresh is not None:
        params.update({f"rt_{k}": v for k, v in refresh.items()})
    result = await session.execute(_USE_CODE_OPENING[refresh is not None], params)
    return result.first() is not None


async def prune_codes(session: AsyncSession, *, before: float) -> int:
    """Delete codes that expired before ``before``; how many."""
    result = await session.execute(delete(_CODES).where(_CODES.c.expires_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]
