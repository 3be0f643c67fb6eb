"""The registry of open connections: an event ends exactly the connections it covers."""

from __future__ import annotations

import asyncio
from typing import Any

from authmesh.revocation import RevocationEvent
from authmesh.service._live import LiveConnections


def _event(kind: str, value: str, not_before: float = 100.0) -> RevocationEvent:
    return RevocationEvent(kind=kind, value=value, not_before=not_before, expires_at=1e12)  # type: ignore[arg-type]


def _claims(
    sub: str = "alice", sid: str = "s1", jti: str = "j1", iat: float = 50.0
) -> dict[str, Any]:
    return {"sub": sub, "sid": sid, "jti": jti, "iat": iat}


async def _scenario() -> None:
    live = LiveConnections()
    ended: list[str] = []
    conns = {
        name: live.register(claims, lambda name=name: ended.append(name))
        for name, claims in {
            "alice-old": _claims(iat=50),
            "alice-new": _claims(sid="s2", jti="j2", iat=150),
            "bob": _claims(sub="bob", sid="s3", jti="j3"),
        }.items()
    }
    assert len(live) == 3

    # A block covers alice's tokens issued before it, not the one issued after.
    assert live.on_event(_event("sub", "alice", not_before=100)) == 1
    await asyncio.sleep(0)
    assert ended == ["alice-old"]

    assert live.on_event(_event("sid", "s2")) == 1
    assert live.on_event(_event("sid", "s2")) == 0  # once only
    assert live.on_event(_event("jti", "nobody")) == 0
    await asyncio.sleep(0)
    assert ended == ["alice-old", "alice-new"]

    for conn in conns.values():
        live.unregister(conn)
    assert len(live) == 0
    assert live.on_event(_event("jti", "j3")) == 0


def test_events_end_what_they_cover_and_nothing_else() -> None:
    asyncio.run(_scenario())
