"""Contract of the user and client repositories, on every backend."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from authmesh.store import clients as client_store
from authmesh.store import sessions as session_store
from authmesh.store import users as user_store
from authmesh.store.db import Database
from authmesh.store.models import RefreshTokenRow, SessionRow, UserRoleRow, UserRow

NOW = 1_764_390_000.0


async def _add_user(db: Database, username: str, roles: list[str] | None = None) -> UserRow:
    async with db.transaction() as session:
        return await user_store.create_user(
            session, username=username, password_hash="$argon2id$x", roles=roles or [], now=NOW
        )


async def test_users_are_found_case_insensitively(db: Database) -> None:
    created = await _add_user(db, "Alice", ["user"])

    async with db.transaction() as session:
        for name in ("Alice", "alice", "ALICE", " alice "):
            found = await user_store.get_user(session, name)
            assert found is not None, name
            assert found.id == created.id
        by_id = await user_store.get_user_by_id(session, created.id)
        locked = await user_store.get_user(session, "alice", for_update=True)
        missing = await user_store.get_user(session, "bob")

    assert by_id is not None and locked is not None
    assert by_id.username == "Alice"
    assert by_id.username_key == "alice"
    assert by_id.blocked is False
    assert by_id.created_at == by_id.updated_at == by_id.password_changed_at == NOW
    assert missing is None


@pytest.mark.parametrize(
    ("first", "second"),
    [("alice", "ALICE"), ("Straße", "STRASSE"), ("bob", " bob")],
    ids=["ascii-case", "unicode-casefold", "surrounding-space"],
)
async def test_usernames_are_unique_ignoring_case(db: Database, first: str, second: str) -> None:
    await _add_user(db, first)

    with pytest.raises(IntegrityError):
        await _add_user(db, second)

    async with db.transaction() as session:
        assert await user_store.count_users(session) == 1


async def test_roles_are_sorted_unique_and_replaced(db: Database) -> None:
    user = await _add_user(db, "alice", ["user", "admin", "user"])
    other = await _add_user(db, "bob", ["user"])

    async with db.transaction() as session:
        assert await user_store.get_roles(session, user.id) == ["admin", "user"]
        assert await user_store.set_roles(session, user.id, ["ops"]) == ["ops"]
    async with db.transaction() as session:
        assert await user_store.get_roles(session, user.id) == ["ops"]
        assert await user_store.get_roles(session, other.id) == ["user"]
        await user_store.set_roles(session, user.id, [])
    async with db.transaction() as session:
        assert await user_store.get_roles(session, user.id) == []
        assert await user_store.get_roles(session, "no-such-id") == []


async def test_list_users_by_name_with_paging(db: Database) -> None:
    for name in ("carol", "Alice", "bob", "dave"):
        await _add_user(db, name)

    async with db.transaction() as session:
        everyone = await user_store.list_users(session)
        page = await user_store.list_users(session, offset=1, limit=2)
        count = await user_store.count_users(session)

    assert [u.username for u in everyone] == ["Alice", "bob", "carol", "dave"]
    assert [u.username for u in page] == ["bob", "carol"]
    assert count == 4


async def test_deleting_a_user_cascades_to_roles_sessions_and_tokens(db: Database) -> None:
    user = await _add_user(db, "alice", ["user"])
    keep = await _add_user(db, "bob", ["user"])
    async with db.transaction() as session:
        for owner in (user, keep):
            sess = await session_store.create_session(
                session,
                user_id=owner.id,
                client_id="web",
                scope="",
                audiences=[],
                now=NOW,
                expires_at=NOW + 60,
            )
            await session_store.add_refresh_token(
                session,
                token_hash=f"hash-{owner.username}",
                session_id=sess.id,
                now=NOW,
                expires_at=NOW + 60,
            )

    async with db.transaction() as session:
        await session.execute(delete(UserRow).where(UserRow.id == user.id))

    async with db.transaction() as session:
        counts = {
            model.__tablename__: (
                await session.execute(select(func.count()).select_from(model))
            ).scalar_one()
            for model in (UserRoleRow, SessionRow, RefreshTokenRow)
        }
    assert counts == {"user_roles": 1, "sessions": 1, "refresh_tokens": 1}


async def _add_client(db: Database, client_id: str, *, secret_hash: str | None = None) -> None:
    async with db.transaction() as session:
        await client_store.create_client(
            session,
            client_id=client_id,
            name=f"The {client_id}",
            secret_hash=secret_hash,
            grant_types=["refresh_token", "password", "password"],
            scopes=["b:read", "a:read"],
            audiences=["orders", "catalog", "orders"],
            roles=[],
            now=NOW,
        )


async def test_clients_round_trip(db: Database) -> None:
    await _add_client(db, "web")
    await _add_client(db, "orders-svc", secret_hash="f" * 64)

    async with db.transaction() as session:
        web = await client_store.get_client(session, "web")
        svc = await client_store.get_client(session, "orders-svc")
        missing = await client_store.get_client(session, "nobody")
        listed = await client_store.list_clients(session)

    assert web is not None and svc is not None
    assert web.secret_hash is None
    assert svc.secret_hash == "f" * 64
    assert web.name == "The web"
    assert web.grant_types == ["password", "refresh_token"]
    assert web.scopes == ["a:read", "b:read"]
    assert web.audiences == ["catalog", "orders"]
    assert web.roles == []
    assert web.created_at == NOW
    assert missing is None
    assert [c.client_id for c in listed] == ["orders-svc", "web"]


async def test_client_ids_are_unique_and_deletable(db: Database) -> None:
    await _add_client(db, "web")

    with pytest.raises(IntegrityError):
        await _add_client(db, "web")

    async with db.transaction() as session:
        assert await client_store.delete_client(session, "web") is True
    async with db.transaction() as session:
        assert await client_store.delete_client(session, "web") is False
        assert await client_store.list_clients(session) == []


async def test_user_and_roles_come_in_one_read(db: Database) -> None:
    created = await _add_user(db, "Carol", ["writer", "admin", "reader"])
    await _add_user(db, "dave")

    async with db.transaction() as session:
        user, roles = await user_store.get_user_and_roles(session, " CAROL ")
        bare, no_roles = await user_store.get_user_and_roles(session, "dave")
        missing = await user_store.get_user_and_roles(session, "nobody")

    assert user is not None and user.id == created.id and user.username == "Carol"
    assert roles == ["admin", "reader", "writer"]
    assert bare is not None and no_roles == []
    assert missing == (None, [])
