"""Contract of the durable revocation log, on every backend."""

from __future__ import annotations

import asyncio

from authmesh.revocation import RevocationEvent, RevocationKind
from authmesh.store import revocations
from authmesh.store.db import Database

NOW = 1_764_390_000.0


def _event(
    value: str, *, expires_at: float = NOW + 600, kind: RevocationKind = "sub"
) -> RevocationEvent:
    return RevocationEvent(kind=kind, value=value, not_before=NOW, expires_at=expires_at)


async def _append(db: Database, *events: RevocationEvent) -> list[int]:
    async with db.transaction() as session:
        return [await revocations.append_event(session, e, now=NOW) for e in events]


async def test_cursors_increase_strictly(db: Database) -> None:
    async with db.transaction() as session:
        assert await revocations.latest_cursor(session) == 0

    cursors = await _append(db, _event("a"), _event("b"))
    cursors += await _append(db, _event("c"))
    cursors += await _append(db, _event("d"), _event("e"))

    assert cursors == sorted(cursors)
    assert len(set(cursors)) == 5
    assert cursors[0] >= 1
    async with db.transaction() as session:
        assert await revocations.latest_cursor(session) == cursors[-1]


async def test_events_since_is_ascending_after_the_cursor_with_a_limit(db: Database) -> None:
    kinds: list[RevocationKind] = ["sub", "sid", "jti", "sub"]
    cursors = await _append(db, *(_event(f"v{i}", kind=k) for i, k in enumerate(kinds)))

    async with db.transaction() as session:
        everything = await revocations.events_since(session, 0, now=NOW)
        after_first = await revocations.events_since(session, cursors[0], now=NOW)
        limited = await revocations.events_since(session, 0, now=NOW, limit=2)
        after_last = await revocations.events_since(session, cursors[-1], now=NOW)

    assert [e.cursor for e in everything] == cursors
    assert [(e.kind, e.value) for e in everything] == [(k, f"v{i}") for i, k in enumerate(kinds)]
    assert everything[0] == RevocationEvent(
        kind="sub", value="v0", not_before=NOW, expires_at=NOW + 600, cursor=cursors[0]
    )
    assert [e.cursor for e in after_first] == cursors[1:]
    assert [e.cursor for e in limited] == cursors[:2]
    assert after_last == []


async def test_events_since_leaves_out_expired_events(db: Database) -> None:
    cursors = await _append(
        db,
        _event("gone", expires_at=NOW + 10),
        _event("edge", expires_at=NOW + 20),
        _event("live", expires_at=NOW + 600),
    )

    async with db.transaction() as session:
        at_10 = await revocations.events_since(session, 0, now=NOW + 10)
        at_19 = await revocations.events_since(session, 0, now=NOW + 19.5)
        at_20 = await revocations.events_since(session, 0, now=NOW + 20)

    assert [e.value for e in at_10] == ["edge", "live"]
    assert [e.value for e in at_19] == ["edge", "live"]
    assert [e.value for e in at_20] == ["live"]
    assert at_20[0].cursor == cursors[2]


async def test_prune_deletes_expired_events_but_never_the_newest(db: Database) -> None:
    cursors = await _append(
        db,
        _event("old-1", expires_at=NOW + 1),
        _event("live", expires_at=NOW + 600),
        _event("old-2", expires_at=NOW + 1),
        _event("newest", expires_at=NOW + 1),
    )

    async with db.transaction() as session:
        pruned = await revocations.prune_expired(session, now=NOW + 10)
    async with db.transaction() as session:
        left = await revocations.events_since(session, 0, now=0)
        latest = await revocations.latest_cursor(session)

    assert pruned == 2
    assert [(e.value, e.cursor) for e in left] == [("live", cursors[1]), ("newest", cursors[3])]
    assert latest == cursors[3]


async def test_cursors_never_restart_after_pruning(db: Database) -> None:
    cursors = await _append(db, *(_event(f"v{i}", expires_at=NOW + 1) for i in range(3)))
    async with db.transaction() as session:
        await revocations.prune_expired(session, now=NOW + 10)
        # Pruning again finds only the kept newest row, which it keeps.
        assert await revocations.prune_expired(session, now=NOW + 10) == 0

    (after,) = await _append(db, _event("later"))

    assert after > cursors[-1]


async def test_concurrent_writers_never_commit_out_of_cursor_order(db: Database) -> None:
    """A reader that has seen cursor N must never later find a smaller cursor appear."""
    first_written = asyncio.Event()
    release_first = asyncio.Event()

    async def slow_writer() -> int:
        async with db.transaction() as session:
            cursor = await revocations.append_event(session, _event("slow"), now=NOW)
            first_written.set()
            await release_first.wait()
            return cursor

    async def fast_writer() -> int:
        await first_written.wait()
        return (await _append(db, _event("fast")))[0]

    slow = asyncio.create_task(slow_writer())
    fast = asyncio.create_task(fast_writer())
    await first_written.wait()
    await asyncio.sleep(0.3)
    # The second writer waits for the first to commit (on PostgreSQL the
    # advisory lock, on SQLite the write lock of BEGIN IMMEDIATE).
    assert not fast.done()
    release_first.set()
    slow_cursor, fast_cursor = await asyncio.gather(slow, fast)

    assert fast_cursor > slow_cursor
    async with db.transaction() as session:
        seen = await revocations.events_since(session, 0, now=NOW)
    assert [e.value for e in seen] == ["slow", "fast"]


async def test_many_concurrent_appends_get_distinct_cursors(db: Database) -> None:
    results = await asyncio.gather(
        *(_append(db, _event(f"w{i}-a"), _event(f"w{i}-b")) for i in range(8))
    )

    for pair in results:
        assert pair[0] < pair[1]
    every = [c for pair in results for c in pair]
    assert len(set(every)) == 16
    async with db.transaction() as session:
        seen = await revocations.events_since(session, 0, now=NOW, limit=100)
    assert [e.cursor for e in seen] == sorted(every)


_TOKENS = [
    {"sub": "u1", "sid": "s1", "jti": "j1", "iat": NOW - 1},
    {"sub": "u1", "sid": "s1", "jti": "j1", "iat": NOW},
    {"sub": "u1", "jti": "j2", "iat": NOW - 1},
    {"sub": "u1", "sid": "s2", "jti": "j3"},
    {"sub": "u2", "sid": "s1", "jti": "j4", "iat": NOW + 5},
    {"sub": "u2", "sid": "s3", "jti": "j1", "iat": NOW + 5},
]


async def test_covering_cursor_follows_the_one_rule(db: Database) -> None:
    # The server's query must agree with RevocationEvent.covers on every token.
    rounds: list[tuple[RevocationKind, str]] = [("sub", "u1"), ("sid", "s1"), ("jti", "j1")]
    for n, (kind, value) in enumerate(rounds):
        # Values of their own per round, so earlier rounds' events cover nothing here.
        event = _event(f"{n}{value}", kind=kind)
        tokens = [
            {k: f"{n}{v}" if k != "iat" else v for k, v in token.items()} for token in _TOKENS
        ]
        [cursor] = await _append(db, event)
        async with db.transaction() as session:
            for token in tokens:
                found = await revocations.covering_cursor(session, token)
                assert (found == cursor) == event.covers(token), (event, token)
                assert found in (None, cursor)
