"""Contract of the session and refresh-token repository, on every backend."""

from __future__ import annotations

import asyncio

from authmesh.store import sessions as session_store
from authmesh.store import users as user_store
from authmesh.store.db import Database
from authmesh.store.models import SessionRow

NOW = 1_764_390_000.0


async def _user(db: Database, name: str = "alice") -> str:
    async with db.transaction() as session:
        user = await user_store.create_user(session, username=name, password_hash="h", now=NOW)
        return user.id


async def _session(db: Database, user_id: str, *, expires_in: float = 3600) -> SessionRow:
    async with db.transaction() as session:
        return await session_store.create_session(
            session,
            user_id=user_id,
            client_id="web",
            scope="orders:read",
            audiences=["orders", "catalog"],
            now=NOW,
            expires_at=NOW + expires_in,
        )


async def test_a_session_round_trips(db: Database) -> None:
    user_id = await _user(db)
    created = await _session(db, user_id)

    async with db.transaction() as session:
        found = await session_store.get_session(session, created.id)
        missing = await session_store.get_session(session, "no-such-session")

    assert found is not None
    assert found.user_id == user_id
    assert found.client_id == "web"
    assert found.scope == "orders:read"
    assert found.audiences == ["orders", "catalog"]
    assert found.auth_time == found.last_used_at == NOW
    assert found.expires_at == NOW + 3600
    assert found.ended_at is None and found.end_reason is None
    assert missing is None


async def test_open_sessions_leave_out_ended_and_expired_ones(db: Database) -> None:
    user_id = await _user(db)
    other_user = await _user(db, "bob")
    live = await _session(db, user_id)
    ended = await _session(db, user_id)
    expired = await _session(db, user_id, expires_in=10)
    await _session(db, other_user)

    async with db.transaction() as session:
        assert await session_store.end_session(session, ended.id, now=NOW + 1, reason="logout")
        assert not await session_store.end_session(session, ended.id, now=NOW + 2, reason="again")
        assert not await session_store.end_session(session, "nope", now=NOW, reason="logout")
        open_now = await session_store.open_sessions(session, user_id, NOW + 5)
        open_later = await session_store.open_sessions(session, user_id, NOW + 20)
        row = await session_store.get_session(session, ended.id)

    assert {s.id for s in open_now} == {live.id, expired.id}
    assert {s.id for s in open_later} == {live.id}
    assert row is not None
    assert (row.ended_at, row.end_reason) == (NOW + 1, "logout")


async def test_end_user_sessions_ends_only_that_users_open_sessions(db: Database) -> None:
    alice, bob = await _user(db), await _user(db, "bob")
    first, second = await _session(db, alice), await _session(db, alice)
    already = await _session(db, alice)
    bobs = await _session(db, bob)
    async with db.transaction() as session:
        await session_store.end_session(session, already.id, now=NOW, reason="logout")

    async with db.transaction() as session:
        ended = await session_store.end_user_sessions(session, alice, now=NOW + 5, reason="block")
    async with db.transaction() as session:
        rows = {s: await session_store.get_session(session, s) for s in (first.id, already.id)}
        still_open = await session_store.open_sessions(session, bob, NOW + 5)
        none_left = await session_store.end_user_sessions(session, alice, now=NOW, reason="x")

    assert sorted(ended) == sorted([first.id, second.id])
    assert rows[first.id] is not None and rows[first.id].end_reason == "block"  # type: ignore[union-attr]
    assert rows[already.id] is not None and rows[already.id].end_reason == "logout"  # type: ignore[union-attr]
    assert [s.id for s in still_open] == [bobs.id]
    assert none_left == []


async def test_refresh_tokens_are_stored_by_hash(db: Database) -> None:
    sess = await _session(db, await _user(db))

    async with db.transaction() as session:
        await session_store.add_refresh_token(
            session, token_hash="a" * 64, session_id=sess.id, now=NOW, expires_at=NOW + 60
        )
    async with db.transaction() as session:
        row = await session_store.get_refresh_token(session, "a" * 64)
        locked = await session_store.get_refresh_token(session, "a" * 64, for_update=True)
        missing = await session_store.get_refresh_token(session, "b" * 64)

    assert row is not None and locked is not None
    assert (row.session_id, row.created_at, row.expires_at) == (sess.id, NOW, NOW + 60)
    assert row.used_at is None and row.successor_hash is None
    assert missing is None


async def test_mark_refresh_used_succeeds_exactly_once(db: Database) -> None:
    sess = await _session(db, await _user(db))
    async with db.transaction() as session:
        await session_store.add_refresh_token(
            session, token_hash="a" * 64, session_id=sess.id, now=NOW, expires_at=NOW + 60
        )

    async with db.transaction() as session:
        first = await session_store.mark_refresh_used(
            session, "a" * 64, now=NOW + 1, successor_hash="s" * 64
        )
    async with db.transaction() as session:
        second = await session_store.mark_refresh_used(
            session, "a" * 64, now=NOW + 2, successor_hash="t" * 64
        )
        unknown = await session_store.mark_refresh_used(
            session, "z" * 64, now=NOW + 2, successor_hash="t" * 64
        )
        row = await session_store.get_refresh_token(session, "a" * 64)

    assert (first, second, unknown) == (True, False, False)
    assert row is not None
    assert (row.used_at, row.successor_hash) == (NOW + 1, "s" * 64)


async def test_mark_refresh_used_is_won_by_one_of_many_concurrent_callers(db: Database) -> None:
    sess = await _session(db, await _user(db))
    async with db.transaction() as session:
        await session_store.add_refresh_token(
            session, token_hash="a" * 64, session_id=sess.id, now=NOW, expires_at=NOW + 60
        )

    async def attempt(index: int) -> bool:
        async with db.transaction() as session:
            await session_store.get_refresh_token(session, "a" * 64, for_update=True)
            won = await session_store.mark_refresh_used(
                session, "a" * 64, now=NOW + index, successor_hash=f"{index:064d}"
            )
            await asyncio.sleep(0.02)  # hold the transaction open so others overlap
            return won

    results = await asyncio.gather(*(attempt(i) for i in range(6)))

    assert sorted(results) == [False] * 5 + [True]
    winner = results.index(True)
    async with db.transaction() as session:
        row = await session_store.get_refresh_token(session, "a" * 64)
    assert row is not None
    assert row.successor_hash == f"{winner:064d}"


async def test_load_rotation_reads_token_session_user_and_roles_at_once(db: Database) -> None:
    async with db.transaction() as session:
        user = await user_store.create_user(
            session, username="carol", password_hash="h", roles=["writer", "admin"], now=NOW
        )
    bare = await _user(db, "dave")
    sess, dave_sess = await _session(db, user.id), await _session(db, bare)
    async with db.transaction() as session:
        for token_hash, sid in (("a" * 64, sess.id), ("b" * 64, dave_sess.id)):
            await session_store.add_refresh_token(
                session, token_hash=token_hash, session_id=sid, now=NOW, expires_at=NOW + 60
            )

    async with db.transaction() as session:
        found = await session_store.load_rotation(session, "a" * 64)
        no_roles = await session_store.load_rotation(session, "b" * 64)
        missing = await session_store.load_rotation(session, "c" * 64)

    assert found == session_store.Rotation(
        used_at=None,
        expires_at=NOW + 60,
        successor_hash=None,
        session_id=sess.id,
        client_id="web",
        scope="orders:read",
        audiences=["orders", "catalog"],
        auth_time=NOW,
        session_expires_at=NOW + 3600,
        ended_at=None,
        user_id=user.id,
        username="carol",
        blocked=False,
        roles=["admin", "writer"],
    )
    assert no_roles is not None and no_roles.roles == [] and no_roles.user_id == bare
    assert missing is None


async def test_a_used_token_is_reread_and_its_session_touched(db: Database) -> None:
    sess = await _session(db, await _user(db))
    async with db.transaction() as session:
        await session_store.add_refresh_token(
            session, token_hash="a" * 64, session_id=sess.id, now=NOW, expires_at=NOW + 60
        )
        assert await session_store.reread_use(session, "a" * 64) == (None, None)
        assert await session_store.mark_refresh_used(
            session, "a" * 64, now=NOW + 5, successor_hash="s" * 64
        )
        await session_store.touch_session(session, sess.id, now=NOW + 5)

    async with db.transaction() as session:
        used = await session_store.reread_use(session, "a" * 64)
        unknown = await session_store.reread_use(session, "z" * 64)
        found = await session_store.load_rotation(session, "a" * 64)
        row = await session_store.get_session(session, sess.id)

    assert used == (NOW + 5, "s" * 64)
    assert unknown == (None, None)
    assert found is not None and (found.used_at, found.successor_hash) == (NOW + 5, "s" * 64)
    assert row is not None and row.last_used_at == NOW + 5 and row.auth_time == NOW
