"""One runner among processes sharing a database: the PostgreSQL advisory lock of
:class:`JobLock`, taken over when its holder's connection drops."""

from __future__ import annotations

import pytest

from authmesh.store.db import Database
from authmesh.store.job_lock import JobLock, lock_key
from authmesh.testing import async_wait_for
from authmesh.testing.databases import DbTarget


async def test_only_one_process_holds_the_lock_until_it_lets_go(
    db: Database, target: DbTarget
) -> None:
    first, second = JobLock(db, "retention"), JobLock(db, "retention")
    try:
        assert await first.acquire() is True
        if target.backend == "sqlite":
            # One machine, one writer at a time: every process simply runs the job.
            assert await second.acquire() is True
            return
        assert await second.acquire() is False
        assert await first.acquire() is True  # still its own
        assert (first.held, second.held) == (True, False)

        await first.release()

        assert await second.acquire() is True
        assert await first.acquire() is False
    finally:
        await first.release()
        await second.release()


async def test_a_holder_whose_connection_dropped_loses_the_lock_to_another(
    db: Database, target: DbTarget
) -> None:
    if target.backend == "sqlite":
        pytest.skip("a PostgreSQL advisory lock")
    first, second = JobLock(db, "retention"), JobLock(db, "retention")
    try:
        assert await first.acquire() is True
        pid = first._conn.get_server_pid()
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")

        await async_wait_for(second.acquire, timeout=5, message="the lock freed")
        assert await first.acquire() is False
        assert first.held is False
    finally:
        await first.release()
        await second.release()


async def test_deployments_in_other_schemas_have_locks_of_their_own(target: DbTarget) -> None:
    assert lock_key("retention", "tenant_a") != lock_key("retention", "tenant_b")
    assert lock_key("retention", None) != lock_key("other-job", None)
    here = Database(target.url, schema=target.schema)
    there = Database(target.url, schema=f"{target.schema}_other" if target.schema else None)
    ours, theirs = JobLock(here, "retention"), JobLock(there, "retention")
    try:
        assert await ours.acquire() is True
        assert await theirs.acquire() is True
    finally:
        await ours.release()
        await theirs.release()
        await here.dispose()
        await there.dispose()
