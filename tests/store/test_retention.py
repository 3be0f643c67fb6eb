"""Contract of the batched deletes of retention: each kind of row goes when past its
cutoff and stays when not, on every backend, whatever the batch size."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from authmesh.revocation import RevocationEvent
from authmesh.store import audit, codes, revocations
from authmesh.store import sessions as session_store
from authmesh.store import users as user_store
from authmesh.store.db import Database
from authmesh.store.models import (
    AuditRow,
    AuthorizationCodeRow,
    RefreshTokenRow,
    RevocationRow,
    SessionRow,
)
from authmesh.store.retention import Cutoffs, PruneCounts, prune

NOW = 1_764_390_000.0


def _cutoffs(**overrides: Any) -> Cutoffs:
    """Cutoffs at NOW for every kind, unless told otherwise."""
    values: dict[str, Any] = {
        "refresh_tokens": NOW,
        "sessions": NOW,
        "codes": NOW,
        "events_expired": NOW,
        "events_created": NOW,
        "audit": NOW,
    }
    values.update(overrides)
    return Cutoffs(**values)


async def _user(db: Database, name: str = "alice") -> str:
    async with db.transaction() as session:
        return (await user_store.create_user(session, username=name, password_hash="h", now=0)).id


async def _session(
    db: Database, user_id: str, *, expires_at: float, ended_at: float | None = None
) -> str:
    async with db.transaction() as session:
        row = await session_store.create_session(
            session,
            user_id=user_id,
            client_id="web",
            scope="",
            audiences=["orders"],
            now=NOW - 1000,
            expires_at=expires_at,
        )
        if ended_at is not None:
            await session_store.end_session(session, row.id, now=ended_at, reason="logout")
    return row.id


async def _token(db: Database, sid: str, name: str, *, expires_at: float, used: bool) -> None:
    async with db.transaction() as session:
        await session_store.add_refresh_token(
            session, token_hash=name, session_id=sid, now=NOW - 1000, expires_at=expires_at
        )
        if used:
            await session_store.mark_refresh_used(
                session, name, now=NOW - 500, successor_hash=f"{name}-next"
            )


async def _keys(db: Database, column: Any) -> set[Any]:
    async with db.transaction() as session:
        return set((await session.execute(select(column))).scalars().all())


async def _count(db: Database, model: Any) -> int:
    async with db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
async def test_refresh_tokens_go_after_their_expiry_used_or_not(
    db: Database, batch_size: int
) -> None:
    sid = await _session(db, await _user(db), expires_at=NOW + 9999)
    await _token(db, sid, "used-expired", expires_at=NOW - 1, used=True)
    await _token(db, sid, "fresh-expired", expires_at=NOW - 1, used=False)
    await _token(db, sid, "used-live", expires_at=NOW + 1, used=True)
    await _token(db, sid, "fresh-live", expires_at=NOW + 1, used=False)
    await _token(db, sid, "at-the-cutoff", expires_at=NOW, used=True)

    counts = await prune(db, _cutoffs(), batch_size=batch_size)

    assert counts.refresh_tokens == 2
    kept = await _keys(db, RefreshTokenRow.token_hash)
    assert kept == {"used-live", "fresh-live", "at-the-cutoff"}
    assert await _keys(db, SessionRow.id) == {sid}


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
async def test_ended_and_expired_sessions_go_with_their_tokens(
    db: Database, batch_size: int
) -> None:
    user_id = await _user(db)
    live = await _session(db, user_id, expires_at=NOW + 10)
    ended_long_ago = await _session(db, user_id, expires_at=NOW + 10, ended_at=NOW - 1)
    ended_lately = await _session(db, user_id, expires_at=NOW + 10, ended_at=NOW + 1)
    expired = await _session(db, user_id, expires_at=NOW - 1)
    for sid in (live, ended_long_ago, ended_lately, expired):
        for n in range(3):  # tokens still within their own lifetime
            await _token(db, sid, f"{sid}-{n}", expires_at=NOW + 50, used=n < 2)

    counts = await prune(db, _cutoffs(), batch_size=batch_size)

    assert counts.sessions == 2
    assert counts.refresh_tokens == 6
    assert await _keys(db, SessionRow.id) == {live, ended_lately}
    assert await _keys(db, RefreshTokenRow.session_id) == {live, ended_lately}
    assert await _count(db, RefreshTokenRow) == 6


async def test_codes_go_after_their_expiry(db: Database) -> None:
    user_id = await _user(db)
    for name, expires_at in (("old", NOW - 1), ("new", NOW + 1)):
        async with db.transaction() as session:
            await codes.add_code(
                session,
                code_hash=name,
                client_id="web",
                user_id=user_id,
                browser_session_id="b",
                redirect_uri="https://app.example/cb",
                scope="openid",
                audiences=["orders"],
                nonce=None,
                code_challenge="c" * 43,
                now=expires_at - 60,
                expires_at=expires_at,
            )
            await codes.use_code(session, name, now=expires_at - 30, session_id=None)

    counts = await prune(db, _cutoffs(), batch_size=1)

    assert counts.authorization_codes == 1
    assert await _keys(db, AuthorizationCodeRow.code_hash) == {"new"}


async def _event(db: Database, value: str, *, created_at: float, expires_at: float) -> int:
    event = RevocationEvent(kind="sid", value=value, not_before=created_at, expires_at=expires_at)
    async with db.transaction() as session:
        return await revocations.append_event(session, event, now=created_at)


async def test_revocation_events_go_once_expired_and_old_but_never_the_newest(
    db: Database,
) -> None:
    expired_old = await _event(db, "a", created_at=NOW - 100, expires_at=NOW - 10)
    await _event(db, "b", created_at=NOW - 100, expires_at=NOW + 10)  # live
    await _event(db, "c", created_at=NOW - 5, expires_at=NOW - 1)  # expired, but recent
    newest = await _event(db, "d", created_at=NOW - 100, expires_at=NOW - 10)

    counts = await prune(db, _cutoffs(events_created=NOW - 50), batch_size=1)

    assert counts.revocation_events == 1
    assert expired_old not in await _keys(db, RevocationRow.cursor)
    assert await _keys(db, RevocationRow.value) == {"b", "c", "d"}
    # The cursor sequence goes on from the newest, on SQLite too.
    assert await _event(db, "e", created_at=NOW, expires_at=NOW + 10) > newest


async def test_audit_events_go_after_the_retention_period_or_never(db: Database) -> None:
    for at in (NOW - 10, NOW - 1, NOW, NOW + 1):
        async with db.transaction() as session:
            await audit.record_audit(session, action="login", outcome="ok", now=at)

    kept_forever = await prune(db, _cutoffs(audit=None), batch_size=1)
    assert (kept_forever.audit_events, await _count(db, AuditRow)) == (0, 4)

    counts = await prune(db, _cutoffs(), batch_size=1)
    assert counts.audit_events == 2
    assert await _keys(db, AuditRow.at) == {NOW, NOW + 1}


async def test_nothing_due_deletes_nothing(db: Database) -> None:
    sid = await _session(db, await _user(db), expires_at=NOW + 10)
    await _token(db, sid, "t", expires_at=NOW + 10, used=True)

    assert await prune(db, _cutoffs(), batch_size=10) == PruneCounts()
