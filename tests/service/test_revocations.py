"""RevocationState: same answers as RevocationEvent.covers, bounded memory, pruning."""

from __future__ import annotations

import gc
import random
import tracemalloc
import uuid
from typing import Any

import pytest

from authmesh.revocation import RevocationEvent
from authmesh.service._revocations import RevocationState
from authmesh.testing import FakeClock

NOW = 1_800_000_000.0


def event(kind: str, value: str, *, cursor: int = 1, nb: float = NOW, ttl: float = 600) -> Any:
    return RevocationEvent(
        kind=kind,
        value=value,
        not_before=nb,
        expires_at=NOW + ttl,
        cursor=cursor,  # type: ignore[arg-type]
    )


def state_at(now: float = NOW) -> tuple[RevocationState, FakeClock, FakeClock]:
    clock, mono = FakeClock(now), FakeClock(100.0)
    return RevocationState(clock=clock, monotonic=mono), clock, mono


def claims(sub: str, sid: str | None, jti: str, iat: float) -> dict[str, Any]:
    out: dict[str, Any] = {"sub": sub, "jti": jti, "iat": iat}
    if sid is not None:
        out["sid"] = sid
    return out


def test_matches_the_wire_format_rule_on_random_cases() -> None:
    rng = random.Random(7)
    subs, sids, jtis = ["u1", "u2", "u3"], ["s1", "s2", "s3", None], ["j1", "j2", "j3"]
    for _ in range(300):
        state, _, _ = state_at()
        events = []
        for cursor in range(1, rng.randint(0, 6) + 1):
            kind = rng.choice(["sub", "sid", "jti"])
            value = rng.choice({"sub": subs, "sid": sids[:3], "jti": jtis}[kind])
            ev = event(kind, value, cursor=cursor, nb=NOW + rng.randint(-50, 50))
            events.append(ev)
            state.apply(ev)
        for _ in range(10):
            c = claims(
                rng.choice(subs), rng.choice(sids), rng.choice(jtis), NOW + rng.randint(-60, 60)
            )
            expected = any(ev.covers(c) for ev in events)
            assert state.is_revoked(c) == expected, (events, c)


@pytest.mark.parametrize(
    ("ev", "token", "kind"),
    [
        (event("sub", "u1", nb=NOW), claims("u1", "s1", "j1", NOW - 1), "sub"),
        (event("sub", "u1", nb=NOW), claims("u1", "s1", "j1", NOW), None),
        (event("sub", "u1", nb=NOW), claims("u2", "s1", "j1", NOW - 1), None),
        (event("sid", "s1"), claims("u1", "s1", "j1", NOW + 100), "sid"),
        (event("sid", "s1"), claims("u1", None, "j1", NOW), None),
        (event("jti", "j1"), claims("u9", "s9", "j1", NOW), "jti"),
    ],
    ids=["sub-older", "sub-issued-at-not-before", "other-sub", "sid", "no-sid", "jti"],
)
def test_covering(ev: RevocationEvent, token: dict[str, Any], kind: str | None) -> None:
    state, _, _ = state_at()
    state.apply(ev)
    sid = token.get("sid")
    assert state.covering(token["sub"], sid, token["jti"], token["iat"]) == kind


def test_refusal_names_the_covering_event_first_then_a_silent_feed() -> None:
    state, _, mono = state_at()
    assert state.refusal("u1", "s1", "j1", NOW, 30) is None
    mono.advance(31)
    assert state.refusal("u1", "s1", "j1", NOW, 30) == "stale"
    assert state.refusal("u1", "s1", "j1", NOW, 60) is None
    state.apply(event("sid", "s1"))
    assert state.refusal("u1", "s1", "j1", NOW, 30) == "sid"  # revoked beats stale
    assert state.refusal("u1", "s2", "j1", NOW, 30) == "stale"
    state.mark_heard()
    assert state.refusal("u1", "s2", "j1", NOW, 30) is None
    state.apply(event("jti", "j2", cursor=2))
    assert state.refusal("u2", None, "j2", NOW, 30) == "jti"


def test_missing_iat_is_covered_like_the_wire_rule() -> None:
    state, _, _ = state_at()
    state.apply(event("sub", "u1"))
    assert state.is_revoked({"sub": "u1", "jti": "j"})


def test_latest_not_before_wins() -> None:
    state, _, _ = state_at()
    state.apply(event("sub", "u1", nb=NOW - 100, cursor=1))
    state.apply(event("sub", "u1", nb=NOW, cursor=2))
    state.apply(event("sub", "u1", nb=NOW - 50, cursor=3))
    assert state.covering("u1", None, "j", NOW - 1) == "sub"
    assert state.covering("u1", None, "j", NOW) is None


def test_cursor_advances_even_for_expired_events() -> None:
    state, _, _ = state_at()
    assert not state.apply(event("jti", "old", cursor=5, ttl=-1))
    assert state.cursor == 5 and len(state) == 0
    assert state.apply(event("jti", "new", cursor=4))
    assert state.cursor == 5


def test_prune_drops_only_expired_events() -> None:
    state, clock, _ = state_at()
    state.apply(event("jti", "short", ttl=30))
    state.apply(event("sid", "short", ttl=30))
    state.apply(event("sub", "short", ttl=30))
    state.apply(event("jti", "long", ttl=600))
    # The same value again with a later expiry must survive the first one's pruning.
    state.apply(event("sid", "renewed", ttl=30))
    state.apply(event("sid", "renewed", ttl=600))
    assert state.prune() == 0
    clock.advance(29)
    assert state.prune() == 0
    clock.advance(11 + 10)  # past expiry and past the end of its 10 s bucket
    assert state.prune() == 3
    assert state.counts() == {"sub": 0, "sid": 1, "jti": 1}
    assert state.covering("x", "renewed", "long", NOW) == "sid"
    clock.advance(600)
    assert state.prune() == 2
    assert len(state) == 0


def test_an_event_is_never_dropped_before_it_expires() -> None:
    rng = random.Random(3)
    state, clock, _ = state_at()
    expiries = {}
    for i in range(500):
        ttl = rng.uniform(1, 200)
        state.apply(event("jti", f"j{i}", ttl=ttl))
        expiries[f"j{i}"] = NOW + ttl
    for _ in range(50):
        clock.advance(rng.uniform(0, 5))
        state.prune()
        for jti, expires in expiries.items():
            if clock() < expires:
                assert state.covering("u", None, jti, NOW) == "jti"


def test_liveness_and_lag() -> None:
    state, _, mono = state_at()
    assert state.seconds_since_heard() == 0
    mono.advance(3)
    assert state.seconds_since_heard() == 3
    state.mark_heard(latest_cursor=9)
    state.apply(event("jti", "j", cursor=4))
    assert state.lag() == {"seconds_since_heard": 0, "cursor": 4, "latest_cursor": 9, "behind": 5}
    assert state.connected_once
    mono.advance(1)
    state.mark_started()
    assert state.seconds_since_heard() == 0


def test_memory_of_100k_live_events_stays_well_under_20_mb() -> None:
    values = [uuid.uuid4().hex for _ in range(100_000)]  # allocated before measuring
    events = [
        event(("jti", "sid", "sub")[i % 3], v, cursor=i + 1, nb=NOW, ttl=60 + i % 900)
        for i, v in enumerate(values)
    ]
    gc.collect()
    tracemalloc.start()
    try:
        state, _, _ = state_at()
        for ev in events:
            state.apply(ev)
        used, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The value strings are shared with the events here; count them as the state's own.
    own = used + sum(len(v) + 49 for v in values)
    print(f"\n100k live revocation events: {own / 1e6:.1f} MB")
    assert len(state) == 100_000
    assert own < 20e6
