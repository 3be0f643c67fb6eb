"""Core statements on the SQLite driver itself: SQLAlchemy's answers, without its execution."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, select, text
from sqlalchemy.util import greenlet_spawn

from authmesh.store import clients as client_store
from authmesh.store import codes as code_store
from authmesh.store import consents as consent_store
from authmesh.store import sessions as session_store
from authmesh.store import users as user_store
from authmesh.store.db import Database
from authmesh.store.models import AuthorizationCodeRow, SessionRow, UserRow
from authmesh.store.sqlite_driver import OneHopConnection
from authmesh.store.sqlite_statements import DirectStatements, StatementPlans
from support.store_rows import add_test_code

NOW = 1_764_390_000.0
CODE = "h" * 64


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/direct.db")
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


async def _seed(db: Database) -> str:
    async with db.transaction() as session:
        await client_store.create_client(
            session,
            client_id="spa",
            name="SPA",
            secret_hash=None,
            grant_types=["authorization_code", "refresh_token"],
            scopes=["orders:read"],
            audiences=["orders"],
            roles=[],
            now=NOW,
            redirect_uris=["https://spa.example/cb"],
            first_party=False,
        )
        user = await user_store.create_user(
            session, username="Alice", password_hash="h", roles=["user", "admin"], now=NOW
        )
        await consent_store.save_consent(session, user.id, "spa", ["orders:read"], now=NOW)
        return user.id


async def _add_code(statements: Any, user_id: str) -> None:
    await add_test_code(statements, code_hash=CODE, user_id=user_id, now=NOW)


async def test_the_store_reads_give_what_sqlalchemy_gives(db: Database) -> None:
    user_id = await _seed(db)
    async with db.core(transaction=True) as direct:
        assert isinstance(direct, DirectStatements)
        await _add_code(direct, user_id)

    async def reads(statements: Any) -> list[Any]:
        return [
            await code_store.load_client_and_exchange(statements, "spa", CODE),
            await code_store.load_client_and_exchange(statements, "spa", "unknown"),
            await client_store.get_client(statements, "spa"),
            await user_store.get_roles(statements, user_id),
            await consent_store.consented_scopes(statements, user_id, "spa"),
            await consent_store.consented_scopes(statements, user_id, "other"),
            await code_store.load_use(statements, CODE),
        ]

    async with db.core(transaction=False) as direct:
        assert isinstance(direct, DirectStatements)
        ours = await reads(direct)
    async with db.autocommit() as session:
        theirs = await reads(session)

    assert _plain(ours) == _plain(theirs)
    client, exchange = ours[0]
    # JSON and booleans come back as their types made them, not as SQLite stores them.
    assert client.redirect_uris == ["https://spa.example/cb"] and client.first_party is False
    assert exchange is not None and exchange.audiences == ["orders"]
    assert exchange.user.blocked is False and exchange.roles == ["admin", "user"]
    assert ours[3] == ["admin", "user"] and ours[4] == ["orders:read"] and ours[5] is None


def _plain(value: Any) -> Any:
    """Detached rows compared by their columns."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if hasattr(value, "__table__"):
        return {c.key: getattr(value, c.key) for c in value.__table__.columns}
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    return value


async def test_the_writes_store_what_sqlalchemy_stores(db: Database) -> None:
    user_id = await _seed(db)
    opening = session_store.session_values(
        session_id="s1",
        user_id=user_id,
        client_id="spa",
        scope="openid",
        audiences=["orders"],
        now=NOW,
        expires_at=NOW + 600,
        auth_time=NOW - 5,
        parent_id="b",
        amr=["pwd", "otp"],
    )
    async with db.core(transaction=True) as direct:
        await _add_code(direct, user_id)
        assert await code_store.use_code(direct, CODE, now=NOW + 1, session_id="s1") is True
        assert await code_store.use_code(direct, CODE, now=NOW + 2, session_id="s2") is False
        await session_store.insert_session(direct, opening)
        await session_store.add_refresh_token(
            direct, token_hash="r" * 64, session_id="s1", now=NOW, expires_at=NOW + 300
        )
    async with db.autocommit() as session:
        stored = await session_store.get_session(session, "s1")
        token = await session_store.get_refresh_token(session, "r" * 64)
        raw = (
            await session.execute(text("SELECT nonce, audiences FROM authorization_codes"))
        ).one()
    assert stored is not None and stored.amr == ["pwd", "otp"] and stored.audiences == ["orders"]
    assert stored.auth_time == NOW - 5 and stored.parent_id == "b"
    assert token is not None and token.session_id == "s1"
    # A JSON column's value is stored as its type's processor writes it.
    assert raw == (None, '["orders"]')


async def test_a_transaction_that_raises_leaves_nothing(db: Database) -> None:
    user_id = await _seed(db)
    with pytest.raises(RuntimeError):
        async with db.core(transaction=True) as direct:
            await _add_code(direct, user_id)
            raise RuntimeError("the request failed")
    async with db.core(transaction=False) as direct:
        assert await code_store.load_use(direct, CODE) == (None, None)
        await _add_code(direct, user_id)  # committed on its own
    async with db.autocommit() as session:
        assert await code_store.load_use(session, CODE) == (None, None)
        count = (await session.execute(select(AuthorizationCodeRow.code_hash))).scalars().all()
    assert count == [CODE]


@pytest.mark.parametrize("transaction", [True, False])
@pytest.mark.parametrize("statements", [0, 1])
async def test_the_connection_goes_back_to_the_pool_with_no_transaction_open(
    db: Database, transaction: bool, statements: int
) -> None:
    user_id = await _seed(db)
    async with db.core(transaction=transaction) as direct:
        for _ in range(statements):
            await user_store.get_roles(direct, user_id)
    pooled = await db.engine.raw_connection()  # the one just given back: the pool's only
    try:
        driver = pooled.driver_connection
        assert isinstance(driver, OneHopConnection)
        assert not driver.in_transaction and driver.take_begin() is None
    finally:
        await greenlet_spawn(pooled.close)


def test_statements_it_cannot_run_are_refused(db: Database) -> None:
    plans = StatementPlans(db.engine.sync_engine.dialect)
    table = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True), Column("v", String, default="x")
    )
    with pytest.raises(TypeError, match="defaults"):
        plans.plan(insert(table), ("id",))
    with pytest.raises(TypeError, match="IN"):
        plans.plan(select(UserRow.id).where(UserRow.id.in_(bindparam("ids", expanding=True))), ())
    with pytest.raises(TypeError, match="Core statement"):
        plans.plan(text("SELECT 1"), ())


async def test_a_missing_parameter_is_an_error_not_null(db: Database) -> None:
    async with db.core(transaction=False) as direct:
        with pytest.raises(Exception, match="code_hash"):
            await direct.execute(code_store._LOAD_USE, {})


def test_plans_are_made_once_per_statement_and_parameter_names_and_bounded(db: Database) -> None:
    plans = StatementPlans(db.engine.sync_engine.dialect, size=2)
    first = plans.plan(code_store._LOAD_USE, ("code_hash",))
    assert plans.plan(code_store._LOAD_USE, ("code_hash",)) is first
    plans.plan(select(SessionRow.id), ())
    plans.plan(select(SessionRow.user_id), ())
    assert plans.plan(code_store._LOAD_USE, ("code_hash",)) is not first
