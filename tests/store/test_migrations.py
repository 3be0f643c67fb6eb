"""The Alembic migrations build exactly the models' schema, on every backend."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from authmesh.store import db as db_module
from authmesh.store.db import Database
from authmesh.store.models import Base
from authmesh.testing.databases import DbTarget

TABLES = {
    "alembic_version",
    "audit_events",
    "authorization_codes",
    "clients",
    "consents",
    "meta",
    "mfa_challenges",
    "mfa_factors",
    "mfa_recovery_codes",
    "refresh_tokens",
    "revocation_events",
    "sessions",
    "signing_keys",
    "ssf_outbox",
    "ssf_streams",
    "user_roles",
    "users",
}


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(db_module._MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


async def test_migrations_match_the_models(db: Database) -> None:
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
        tables = await conn.run_sync(_tables)

    assert diff == []
    assert tables == TABLES


async def test_upgrade_is_idempotent(db: Database) -> None:
    await db.upgrade()
    await db.upgrade()

    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_downgrade_to_base_and_up_again(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(_config(c), "base"))
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_tables) == {"alembic_version"}

    await db.upgrade()

    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_an_empty_database_differs_from_the_models(target: DbTarget) -> None:
    # The comparison can fail: on a database with no migration applied it sees every table.
    database = Database(target.url, schema=target.schema)
    try:
        async with database.engine.connect() as conn:
            diff = await conn.run_sync(_diff)
    finally:
        await database.dispose()

    added = {entry[1].name for entry in diff if entry[0] == "add_table"}
    assert added == TABLES - {"alembic_version"}
