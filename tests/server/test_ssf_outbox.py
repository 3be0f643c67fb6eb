"""The outbox hook: SETs are written with the revocation, in its transaction, for each stream."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from authmesh.server.feed import publish
from authmesh.server.ssf import streams
from authmesh.store.models import RevocationRow, SsfOutboxRow
from support.harness import Api


class Boom(Exception):
    pass


async def _counts(api: Api) -> tuple[int, int]:
    async with api.core.db.transaction() as session:
        sets = (await session.execute(select(func.count()).select_from(SsfOutboxRow))).scalar_one()
        events = (
            await session.execute(select(func.count()).select_from(RevocationRow))
        ).scalar_one()
    return int(sets), int(events)


def test_a_rolled_back_revocation_leaves_no_set_and_a_committed_one_one_per_stream(
    api: Api,
) -> None:
    for _ in range(2):
        api.server.call(streams.create_stream(api.core, f"rx-{uuid.uuid4().hex[:8]}", {}))
    before = api.server.call(_counts(api))

    async def revoke_then_fail() -> None:
        async with api.core.db.transaction() as session:
            await publish.revoke(api.core, session, "jti", ["j-rolled-back"])
            raise Boom()

    with pytest.raises(Boom):
        api.server.call(revoke_then_fail())
    assert api.server.call(_counts(api)) == before

    async def revoke() -> None:
        async with api.core.db.transaction() as session:
            await publish.revoke(api.core, session, "jti", ["j-kept"], reason="token_revocation")

    api.server.call(revoke())
    sets, events = api.server.call(_counts(api))
    assert (sets - before[0], events - before[1]) == (2, 1)


def test_a_disabled_stream_gets_nothing_and_a_stream_only_its_event_types(api: Api) -> None:
    core = api.core
    only_disabled = api.server.call(
        streams.create_stream(
            core,
            "rx-narrow",
            {
                "events_requested": [
                    "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
                ]
            },
        )
    )
    off = api.server.call(streams.create_stream(core, "rx-off", {}))
    api.server.call(
        streams.set_status(core, "rx-off", {"stream_id": off["stream_id"], "status": "disabled"})
    )
    everything = api.server.call(streams.create_stream(core, "rx-all", {}))

    async def revoke() -> None:
        async with core.db.transaction() as session:
            await publish.revoke(core, session, "sid", ["s-1"], reason="logout")

    api.server.call(revoke())

    async def per_stream() -> dict[str, int]:
        async with core.db.transaction() as session:
            rows = await session.execute(
                select(SsfOutboxRow.stream_id, func.count()).group_by(SsfOutboxRow.stream_id)
            )
            return {sid: int(n) for sid, n in rows.all()}

    counts = api.server.call(per_stream())
    assert counts.get(everything["stream_id"]) == 1
    assert only_disabled["stream_id"] not in counts
    assert off["stream_id"] not in counts
