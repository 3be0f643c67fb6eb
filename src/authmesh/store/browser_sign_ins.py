"""Browser sign-ins (single sign-on sessions) and what the sign-in endpoints read with them.

Each read is one statement: the client a request names is outer-joined with
the sign-in or the user the request is about, so it comes back without one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.store.clients import CLIENT_COLUMNS, client_of
from authmesh.store.models import ClientRow, FactorRow, SessionRow, UserRow
from authmesh.store.rows import Statements, detached
from authmesh.store.users import username_key

__all__ = [
    "BrowserSignIn",
    "load_browser_sign_in",
    "load_client_and_sign_in",
    "load_client_and_user",
]

# Table columns, not the mapped classes' attributes: a statement that names an ORM
# attribute anywhere runs through the ORM's compile and result layers, which cost
# more than the row (these statements only read columns).
_CLIENTS = ClientRow.__table__
_USERS = UserRow.__table__
_SESSIONS = SessionRow.__table__
_FACTORS = FactorRow.__table__


@dataclass(frozen=True, slots=True, kw_only=True)
class BrowserSignIn:
    """An open browser sign-in and what of its user the authorization endpoint needs."""

    id: str
    user_id: str
    auth_time: float
    amr: list[str] | None
    username: str
    blocked: bool


_SIGN_IN_COLUMNS = (
    _SESSIONS.c.id,
    _SESSIONS.c.user_id,
    _SESSIONS.c.auth_time,
    _SESSIONS.c.amr,
    _USERS.c.username,
    _USERS.c.blocked,
)
_OPEN = and_(
    _SESSIONS.c.browser_secret_hash == bindparam("secret_hash"),
    _SESSIONS.c.ended_at.is_(None),
    _SESSIONS.c.expires_at > bindparam("now"),
)
_SIGN_IN = _SESSIONS.join(_USERS, _USERS.c.id == _SESSIONS.c.user_id)
# The browser session and its user in one statement.
_LOAD_SIGN_IN = select(*_SIGN_IN_COLUMNS).select_from(_SIGN_IN).where(_OPEN)
# /authorize with a cookie.
_LOAD_CLIENT_AND_SIGN_IN = (
    select(*CLIENT_COLUMNS, *_SIGN_IN_COLUMNS)
    .select_from(_CLIENTS.outerjoin(_SIGN_IN, _OPEN))
    .where(_CLIENTS.c.client_id == bindparam("client_id"))
)

# The sign-in form's POST: the client it continues, the user it names, and whether
# that user has a second factor (without one, the sign-in needs no read of them).
_LOAD_CLIENT_AND_USER = (
    select(*CLIENT_COLUMNS, *_USERS.c, exists().where(_FACTORS.c.user_id == _USERS.c.id))
    .select_from(_CLIENTS.outerjoin(_USERS, _USERS.c.username_key == bindparam("key")))
    .where(_CLIENTS.c.client_id == bindparam("client_id"))
)


def _sign_in(values: Sequence[Any]) -> BrowserSignIn | None:
    if values[0] is None:
        return None
    sid, user_id, auth_time, amr, username, blocked = values
    return BrowserSignIn(
        id=sid,
        user_id=user_id,
        auth_time=auth_time,
        amr=None if amr is None else list(amr),
        username=username,
        blocked=bool(blocked),
    )


async def load_browser_sign_in(
    session: Statements, secret_hash: str, *, now: float
) -> BrowserSignIn | None:
    """The open browser sign-in whose cookie secret has this hash, with its user; or ``None``."""
    row = (await session.execute(_LOAD_SIGN_IN, {"secret_hash": secret_hash, "now": now})).first()
    return None if row is None else _sign_in(row)


async def load_client_and_sign_in(
    session: Statements, client_id: str, secret_hash: str, *, now: float
) -> tuple[ClientRow | None, BrowserSignIn | None]:
    """The client (detached, as ``clients.get_client`` gives it) and the open browser
    sign-in whose cookie secret has this hash, in one statement; ``None`` for either."""
    params = {"client_id": client_id, "secret_hash": secret_hash, "now": now}
    row = (await session.execute(_LOAD_CLIENT_AND_SIGN_IN, params)).first()
    if row is None:
        return None, None
    return client_of(row), _sign_in(row[len(CLIENT_COLUMNS) :])


async def load_client_and_user(
    session: AsyncSession, client_id: str, username: str
) -> tuple[ClientRow | None, UserRow | None, bool]:
    """The client and the user with this username (case-insensitive), both detached, and
    whether the user has a second factor, in one statement; ``None`` for the client or
    the user. The user is not there without the client."""
    params = {"client_id": client_id, "key": username_key(username)}
    row = (await session.execute(_LOAD_CLIENT_AND_USER, params)).first()
    if row is None:
        return None, None, False
    n = len(CLIENT_COLUMNS)
    if row[n] is None:
        return client_of(row), None, False
    user = detached(UserRow, {c.key: row[n + i] for i, c in enumerate(_USERS.c)})
    return client_of(row), user, bool(row[-1])
