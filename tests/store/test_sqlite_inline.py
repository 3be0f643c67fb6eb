"""SQLite's short statements in the event loop's thread: never a wait there for a lock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from authmesh.store.db import Database
from authmesh.store.sqlite_driver import OneHopConnection


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    async with database.transaction() as session:
        await session.execute(text("CREATE TABLE t (n INTEGER)"))
    try:
        yield database
    finally:
        await database.dispose()


async def test_a_short_transaction_hands_off_only_its_begin_and_commit(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    hand_offs = 0
    real_execute = OneHopConnection._execute

    async def counting(self: OneHopConnection, fn: object, *args: object) -> object:
        nonlocal hand_offs
        hand_offs += 1
        return await real_execute(self, fn, *args)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(OneHopConnection, "_execute", counting)
    async with sqlite_db.transaction(short=True) as session:
        await session.execute(text("INSERT INTO t VALUES (1)"))
        await session.execute(text("INSERT INTO t VALUES (2)"))
        total = (await session.execute(text("SELECT sum(n) FROM t"))).scalar()
    assert total == 3
    assert hand_offs == 1  # the commit; BEGIN IMMEDIATE found the lock free
    async with sqlite_db.autocommit(short=True) as session:
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 2
    assert hand_offs == 1


async def test_a_short_statement_waits_for_another_writer_off_the_event_loop(
    sqlite_db: Database,
) -> None:
    ticks = 0
    waiting = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    async def writer() -> None:
        await waiting.wait()
        async with sqlite_db.transaction(short=True) as session:
            await session.execute(text("INSERT INTO t VALUES (2)"))

    beat = asyncio.create_task(heartbeat())
    try:
        async with sqlite_db.transaction() as session:
            await session.execute(text("INSERT INTO t VALUES (1)"))  # holds the write lock
            second = asyncio.create_task(writer())
            waiting.set()
            await asyncio.sleep(0.2)
            assert not second.done()  # waiting for the lock, in the driver's thread
            before = ticks
            await asyncio.sleep(0.05)
            assert ticks > before  # the event loop is not held up meanwhile
        await asyncio.wait_for(second, timeout=5)
    finally:
        beat.cancel()
    async with sqlite_db.autocommit() as session:
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 2
