"""Contract of the sign-in endpoints' one-statement reads, on every backend."""

from __future__ import annotations

from authmesh.store import browser_sign_ins as sign_in_store
from authmesh.store import clients as client_store
from authmesh.store import codes as code_store
from authmesh.store import factors as factor_store
from authmesh.store import sessions as session_store
from authmesh.store import users as user_store
from authmesh.store.db import Database
from support.store_rows import add_test_code

NOW = 1_764_390_000.0
SECRET_HASH = "c" * 64


async def _seed(db: Database, *, blocked: bool = False) -> str:
    """The client ``spa``, the user Alice and her browser sign-in; returns her id."""
    async with db.transaction() as session:
        await client_store.create_client(
            session,
            client_id="spa",
            name="SPA",
            secret_hash=None,
            grant_types=["authorization_code"],
            scopes=["orders:read"],
            audiences=["orders"],
            roles=[],
            now=NOW,
            redirect_uris=["https://spa.example/cb"],
        )
        user = await user_store.create_user(
            session, username="Alice", password_hash="h", roles=["user"], now=NOW
        )
        user.blocked = blocked
        await session_store.create_session(
            session,
            user_id=user.id,
            client_id="spa",
            scope="",
            audiences=[],
            now=NOW,
            expires_at=NOW + 3600,
            browser_secret_hash=SECRET_HASH,
            amr=["pwd"],
        )
        return user.id


async def test_client_and_sign_in_come_in_one_read(db: Database) -> None:
    user_id = await _seed(db)

    async with db.transaction() as session:
        client, found = await sign_in_store.load_client_and_sign_in(
            session, "spa", SECRET_HASH, now=NOW
        )
        alone, none = await sign_in_store.load_client_and_sign_in(session, "spa", "d" * 64, now=NOW)
        missing = await sign_in_store.load_client_and_sign_in(
            session, "nobody", SECRET_HASH, now=NOW
        )

    assert client is not None and client.redirect_uris == ["https://spa.example/cb"]
    assert found is not None
    assert (found.user_id, found.username, found.blocked) == (user_id, "Alice", False)
    assert found.amr == ["pwd"] and found.auth_time == NOW
    assert alone is not None and alone.client_id == "spa" and none is None
    assert missing == (None, None)


async def test_an_ended_or_expired_sign_in_is_not_found(db: Database) -> None:
    await _seed(db)

    async with db.transaction() as session:
        _, expired = await sign_in_store.load_client_and_sign_in(
            session, "spa", SECRET_HASH, now=NOW + 3600
        )
        found = await sign_in_store.load_browser_sign_in(session, SECRET_HASH, now=NOW)
        assert found is not None
        await session_store.end_browser_session(session, found.id, now=NOW, reason="logout")
    async with db.transaction() as session:
        client, ended = await sign_in_store.load_client_and_sign_in(
            session, "spa", SECRET_HASH, now=NOW
        )
        gone = await sign_in_store.load_browser_sign_in(session, SECRET_HASH, now=NOW)

    assert expired is None
    assert client is not None and ended is None and gone is None


async def test_a_blocked_user_s_sign_in_says_so(db: Database) -> None:
    await _seed(db, blocked=True)

    async with db.transaction() as session:
        _, found = await sign_in_store.load_client_and_sign_in(session, "spa", SECRET_HASH, now=NOW)

    assert found is not None and found.blocked


async def test_client_and_user_come_in_one_read(db: Database) -> None:
    user_id = await _seed(db)

    async with db.transaction() as session:
        client, user, has_factors = await sign_in_store.load_client_and_user(
            session, "spa", " ALICE "
        )
        alone, nobody, _ = await sign_in_store.load_client_and_user(session, "spa", "bob")
        missing = await sign_in_store.load_client_and_user(session, "nobody", "alice")

    assert client is not None and client.client_id == "spa"
    assert user is not None and (user.id, user.username, user.password_hash) == (
        user_id,
        "Alice",
        "h",
    )
    assert not has_factors
    assert alone is not None and nobody is None
    assert missing == (None, None, False)


async def test_the_same_read_says_whether_the_user_has_a_second_factor(db: Database) -> None:
    user_id = await _seed(db)
    async with db.transaction() as session:
        await factor_store.add_factor(
            session, user_id=user_id, kind="totp", name="phone", now=NOW, totp_secret="S"
        )

    async with db.transaction() as session:
        _, user, has_factors = await sign_in_store.load_client_and_user(session, "spa", "alice")

    assert user is not None and has_factors


async def test_the_exchange_reads_client_and_code_together_and_a_code_is_used_once(
    db: Database,
) -> None:
    user_id = await _seed(db)
    async with db.transaction() as session:
        await add_test_code(
            session, code_hash="h" * 64, user_id=user_id, now=NOW, browser_session_id="gone"
        )

    async with db.transaction() as session:
        client, found = await code_store.load_client_and_exchange(session, "spa", "h" * 64)
        _, unknown = await code_store.load_client_and_exchange(session, "spa", "x" * 64)
        _, no_code = await code_store.load_client_and_exchange(session, "spa", None)
        nobody = await code_store.load_client_and_exchange(session, "nobody", "h" * 64)
        first = await code_store.use_code(session, "h" * 64, now=NOW + 1, session_id="s1")
        again = await code_store.use_code(session, "h" * 64, now=NOW + 2, session_id="s2")
        used = await code_store.load_use(session, "h" * 64)

    assert client is not None and client.client_id == "spa"
    assert found is not None and found.user.id == user_id and found.roles == ["user"]
    assert found.used_at is None and found.browser_expires_at is None  # no such sign-in
    assert unknown is None and no_code is None and nobody == (None, None)
    assert (first, again) == (True, False)
    assert used == (NOW + 1, "s1")
