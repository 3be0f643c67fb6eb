"""PostgreSQL's one-statement code use: the code, its session and refresh token, or nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from authmesh.store import clients as client_store
from authmesh.store import codes as code_store
from authmesh.store import sessions as session_store
from authmesh.store import users as user_store
from authmesh.store.db import Database
from authmesh.store.models import RefreshTokenRow, SessionRow
from support.store_rows import add_test_code

NOW = 1_764_390_000.0


async def _code(db: Database, code_hash: str) -> str:
    async with db.transaction() as session:
        await client_store.create_client(
            session,
            client_id="spa",
            name="SPA",
            secret_hash=None,
            grant_types=["authorization_code", "refresh_token"],
            scopes=[],
            audiences=["orders"],
            roles=[],
            now=NOW,
            redirect_uris=["https://spa.example/cb"],
        )
        user = await user_store.create_user(
            session, username="Alice", password_hash="h", roles=[], now=NOW
        )
        await add_test_code(session, code_hash=code_hash, user_id=user.id, now=NOW)
        return user.id


def _opening(user_id: str, sid: str) -> dict[str, object]:
    return session_store.session_values(
        session_id=sid,
        user_id=user_id,
        client_id="spa",
        scope="openid",
        audiences=["orders"],
        now=NOW,
        expires_at=NOW + 600,
        auth_time=NOW - 5,
        parent_id="b",
        amr=["pwd"],
    )


async def test_the_code_is_used_and_its_session_opened_once(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has no data-modifying WITH: it runs three statements")
    user_id = await _code(db, "h" * 64)
    token = {"token_hash": "r" * 64, "created_at": NOW, "expires_at": NOW + 300}

    async with db.transaction() as session:
        first = await code_store.use_code_opening(
            session, "h" * 64, now=NOW + 1, opening=_opening(user_id, "s1"), refresh=token
        )
        again = await code_store.use_code_opening(
            session, "h" * 64, now=NOW + 2, opening=_opening(user_id, "s2"), refresh=None
        )
        used = await code_store.load_use(session, "h" * 64)
        opened = await session_store.get_session(session, "s1")
        sessions = (await session.execute(select(func.count()).select_from(SessionRow))).scalar()
        rt = await session_store.get_refresh_token(session, "r" * 64)
        tokens = (await session.execute(select(func.count()).select_from(RefreshTokenRow))).scalar()

    assert (first, again) == (True, False)
    assert used == (NOW + 1, "s1")
    assert opened is not None and opened.user_id == user_id and opened.amr == ["pwd"]
    assert opened.audiences == ["orders"] and opened.auth_time == NOW - 5
    assert opened.parent_id == "b" and opened.expires_at == NOW + 600 and opened.dpop_jkt is None
    assert sessions == 1 and tokens == 1
    assert rt is not None and rt.session_id == "s1" and rt.expires_at == NOW + 300
