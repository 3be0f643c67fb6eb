"""Contract of the audit trail, the signing-key table and the meta values, on every backend."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from authmesh.store import audit, signing_keys
from authmesh.store.db import Database
from authmesh.store.meta import get_or_create_meta

NOW = 1_764_390_000.0


async def _seed_audit(db: Database) -> None:
    rows = [
        ("login", "success", "web", "alice", NOW + 0),
        ("login", "failure", "web", "alice", NOW + 10),
        ("login", "failure", "web", "mallory", NOW + 20),
        ("block", "success", "admin", "alice", NOW + 30),
        ("password_change", "success", "alice", "alice", NOW + 40),
    ]
    async with db.transaction() as session:
        for action, outcome, actor, subject, at in rows:
            await audit.record_audit(
                session,
                action=action,
                outcome=outcome,
                now=at,
                actor=actor,
                subject=subject,
                client_id="web",
                client_ip="127.0.0.1",
                details={"reason": "bad_password"} if outcome == "failure" else {},
            )


async def _query(db: Database, **filters: object) -> list[tuple[str, str, float]]:
    async with db.transaction() as session:
        rows = await audit.query_audit(session, audit.AuditQuery(**filters))  # type: ignore[arg-type]
    return [(r.action, r.subject or "", r.at - NOW) for r in rows]


async def test_audit_is_newest_first(db: Database) -> None:
    await _seed_audit(db)

    async with db.transaction() as session:
        rows = await audit.query_audit(session)

    assert [r.at - NOW for r in rows] == [40, 30, 20, 10, 0]
    assert [r.id for r in rows] == sorted((r.id for r in rows), reverse=True)
    failure = rows[2]
    assert failure.details == {"reason": "bad_password"}
    assert (failure.actor, failure.client_id, failure.client_ip) == ("web", "web", "127.0.0.1")


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"action": "login"}, [20, 10, 0]),
        ({"subject": "alice"}, [40, 30, 10, 0]),
        ({"actor": "admin"}, [30]),
        ({"outcome": "failure"}, [20, 10]),
        ({"action": "login", "subject": "alice", "outcome": "failure"}, [10]),
        ({"since": NOW + 10}, [40, 30, 20, 10]),
        ({"until": NOW + 10}, [0]),
        ({"since": NOW + 10, "until": NOW + 30}, [20, 10]),
        ({"limit": 2}, [40, 30]),
        ({"action": "nothing"}, []),
    ],
    ids=[
        "action",
        "subject",
        "actor",
        "outcome",
        "combined",
        "since-inclusive",
        "until-exclusive",
        "window",
        "limit",
        "no-match",
    ],
)
async def test_audit_filters(db: Database, filters: dict[str, object], expected: list[int]) -> None:
    await _seed_audit(db)

    found = await _query(db, **filters)

    assert [at for _, _, at in found] == expected


async def test_audit_pages_with_before_id(db: Database) -> None:
    await _seed_audit(db)
    async with db.transaction() as session:
        first = await audit.query_audit(session, audit.AuditQuery(limit=2))
        second = await audit.query_audit(session, audit.AuditQuery(limit=2, before_id=first[-1].id))
        third = await audit.query_audit(session, audit.AuditQuery(limit=2, before_id=second[-1].id))

    pages = [[r.at - NOW for r in page] for page in (first, second, third)]
    assert pages == [[40, 30], [20, 10], [0]]


async def _add_key(db: Database, kid: str, *, published: float, activates: float) -> None:
    async with db.transaction() as session:
        await signing_keys.add_key(
            session,
            kid=kid,
            alg="EdDSA",
            public_jwk={"kty": "OKP", "kid": kid},
            private_jwk="{}",
            encrypted=False,
            published_at=published,
            activates_at=activates,
        )


async def test_signing_keys_order_publication_and_retirement(db: Database) -> None:
    await _add_key(db, "b-first", published=NOW, activates=NOW)
    await _add_key(db, "a-also-first", published=NOW, activates=NOW)
    await _add_key(db, "next", published=NOW + 100, activates=NOW + 700)

    async with db.transaction() as session:
        await signing_keys.retire_keys_before(
            session, activates_at=NOW + 700, retires_at=NOW + 700, expires_at=NOW + 1330
        )
    async with db.transaction() as session:
        rows = await signing_keys.all_keys(session)
        before_next = await signing_keys.published_keys(session, NOW + 50)
        both = await signing_keys.published_keys(session, NOW + 100)
        after_expiry = await signing_keys.published_keys(session, NOW + 1330)

    assert [r.kid for r in rows] == ["a-also-first", "b-first", "next"]
    retired = {r.kid: (r.retires_at, r.expires_at) for r in rows}
    assert retired == {
        "a-also-first": (NOW + 700, NOW + 1330),
        "b-first": (NOW + 700, NOW + 1330),
        "next": (None, None),
    }
    assert [r.kid for r in before_next] == ["a-also-first", "b-first"]
    assert [r.kid for r in both] == ["a-also-first", "b-first", "next"]
    assert [r.kid for r in after_expiry] == ["next"]
    assert rows[2].public_jwk == {"kty": "OKP", "kid": "next"}


async def test_retiring_keeps_an_already_set_retirement(db: Database) -> None:
    await _add_key(db, "old", published=NOW, activates=NOW)
    async with db.transaction() as session:
        await signing_keys.retire_keys_before(
            session, activates_at=NOW + 10, retires_at=NOW + 10, expires_at=NOW + 20
        )
        await signing_keys.retire_keys_before(
            session, activates_at=NOW + 50, retires_at=NOW + 50, expires_at=NOW + 60
        )
    async with db.transaction() as session:
        (row,) = await signing_keys.all_keys(session)

    assert (row.retires_at, row.expires_at) == (NOW + 10, NOW + 20)


async def test_meta_value_is_created_once(db: Database) -> None:
    counter = itertools.count()

    def make() -> str:
        return f"value-{next(counter)}"

    first = await get_or_create_meta(db, "pepper", make)
    second = await get_or_create_meta(db, "pepper", make)
    other = await get_or_create_meta(db, "other", make)

    assert first == second == "value-0"
    assert other == "value-1"


async def test_meta_race_gives_everyone_the_same_value(db: Database) -> None:
    counter = itertools.count()

    values = await asyncio.gather(
        *(get_or_create_meta(db, "pepper", lambda: f"v{next(counter)}") for _ in range(5))
    )

    assert len(set(values)) == 1
