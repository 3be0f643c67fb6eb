"""Soak: a few hundred refresh rotations, sign-ins and logouts on a server pruning in the
background; the table sizes stay flat instead of growing with every request.

The server's clock is a FakeClock moved one second per rotation, with lives
short enough (a 60 s idle refresh lifetime, 30 s access tokens, 2 min of audit)
that several generations of every kind of row pass in one run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from authmesh.server.retention import RetentionJob
from authmesh.store.models import (
    AuditRow,
    RefreshTokenRow,
    RevocationRow,
    SessionRow,
)
from authmesh.testing import FakeClock, wait_for
from support.harness import Api

ROTATIONS = 250
RELOGIN_EVERY = 30
SAMPLE_EVERY = 50
IDLE, TTL, AUDIT = 60, 30, 120
TABLES = {
    "refresh_tokens": RefreshTokenRow,
    "sessions": SessionRow,
    "revocation_events": RevocationRow,
    "audit_events": AuditRow,
}
#: What each table can hold at most once a run reached steady state: the refresh
#: tokens issued within an idle life, both ends included (a rotation a second and
#: a sign-in per relogin; tokens of sessions ended lately are among them); sessions
#: ended within the last access-token life, plus the open one; revocation events
#: not yet expired, plus the newest; audit events of the retention period (a
#: sign-in and a logout per relogin).
BOUNDS = {
    "refresh_tokens": IDLE + 1 + IDLE // RELOGIN_EVERY + 1,
    "sessions": TTL // RELOGIN_EVERY + 2,
    "revocation_events": TTL // RELOGIN_EVERY + 2,
    "audit_events": 2 * (AUDIT // RELOGIN_EVERY + 1),
}


def _sizes(api: Api) -> dict[str, int]:
    async def count() -> dict[str, int]:
        async with api.core.db.transaction() as session:
            return {
                name: int((await session.execute(select(func.count()).select_from(m))).scalar_one())
                for name, m in TABLES.items()
            }

    return api.server.call(count())


def _after_a_full_pass(job: RetentionJob) -> None:
    """Wait until a pass that started after the clock last moved has finished."""
    done = job.passes
    wait_for(lambda: job.passes >= done + 2, timeout=10, message="a retention pass")


def test_table_sizes_stay_flat_under_rotations_logins_and_logouts(
    start_server: Callable[..., Api], record_property: Callable[[str, Any], None]
) -> None:
    clock = FakeClock()
    api = start_server(
        clock=clock,
        access_token_ttl=TTL,
        leeway=0,
        refresh_idle_ttl=IDLE,
        refresh_absolute_ttl=4 * IDLE,
        refresh_reuse_grace=0,
        audit_retention=AUDIT,
        retention_interval=0.01,
    )
    job: RetentionJob = api.server.app.state.retention
    _after_a_full_pass(job)
    start = _sizes(api)
    token = api.login()["refresh_token"]
    samples: list[dict[str, int]] = []

    for step in range(1, ROTATIONS + 1):
        clock.advance(1)
        if step % RELOGIN_EVERY == 0:
            assert api.revoke(token).status_code == 200
            token = api.login()["refresh_token"]
        response = api.refresh(token)
        assert response.status_code == 200, response.text
        token = response.json()["refresh_token"]
        if step % SAMPLE_EVERY == 0:
            _after_a_full_pass(job)
            samples.append(_sizes(api))

    record_property("retention_soak_start", start)
    record_property("retention_soak_samples", samples)
    record_property("retention_soak_removed", job.removed.as_dict())
    print(f"\nstart {start}\nsamples {samples}\nremoved {job.removed.as_dict()}")
    steady = samples[2:]  # from step 150: every kind has lived past its life
    for name, bound in BOUNDS.items():
        assert max(s[name] for s in steady) <= bound, (name, steady)
    # Flat: the last sample is no larger than the first one at steady state.
    assert samples[-1]["refresh_tokens"] <= steady[0]["refresh_tokens"] + 2
    # Without retention the refresh-token table would hold every token ever issued.
    issued = ROTATIONS + ROTATIONS // RELOGIN_EVERY + 1
    assert job.removed.refresh_tokens >= issued - BOUNDS["refresh_tokens"]
