"""The scale run's verdicts on hand-made records: each promise can fail."""

from __future__ import annotations

from typing import Any

from bench.scale.checks import analyse

T0 = 1000.0
KILL = [("kill", T0 + 10, "r3"), ("restart", T0 + 20, "r3")]


def _record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "started": T0,
        "stopped": T0 + 30,
        "done": [(T0 + 1, "refresh_token"), (T0 + 2, "password"), (T0 + 2.5, "check")],
        "failures": [],
        "chains": [{"tokens": ["a", "b"], "used_at": [T0 + 1], "broken": None}],
        "blocks": [
            {
                "ident": "b0",
                "sent": T0 + 3,
                "answered": T0 + 3.1,
                "revoked": {"0": T0 + 3.15, "1": T0 + 3.2},
            }
        ],
        "checks": {"last token rotates": 1},
        "check_failures": [],
    }
    record.update(changes)
    return record


def _failure(at: float, what: str = "503", retryable: bool = True) -> dict[str, Any]:
    return {"at": T0 + at, "kind": "refresh_token", "what": what, "retryable": retryable}


def test_a_clean_record_passes_with_its_figures() -> None:
    a = analyse(_record(), KILL, services=2)
    assert a.ok, a.problems
    assert a.grants == {"refresh_token": 1, "password": 1}
    assert round(a.latency(0.99)) == 100
    assert round(a.first_service_ms[0]) == 50
    assert round(a.from_sent_ms[0]) == 200


def test_retryable_errors_in_the_kill_window_are_allowed() -> None:
    a = analyse(_record(failures=[_failure(10.2), _failure(12, "ConnectError")]), KILL, 2)
    assert a.ok, a.problems
    assert a.failures_in_windows == 2


def test_an_error_outside_the_windows_fails() -> None:
    a = analyse(_record(failures=[_failure(16)]), KILL, 2)
    assert any("outside" in p for p in a.problems)


def test_a_non_retryable_error_fails_even_in_the_window() -> None:
    a = analyse(_record(failures=[_failure(10.5, "500", retryable=False)]), KILL, 2)
    assert any("non-retryable" in p for p in a.problems)


def test_a_block_missing_a_service_fails() -> None:
    block = {"ident": "b0", "sent": T0 + 3, "answered": T0 + 3.1, "revoked": {"0": T0 + 3.2}}
    a = analyse(_record(blocks=[block]), KILL, 2)
    assert any("reached 1 of 2" in p for p in a.problems)


def test_a_lost_or_twice_used_token_fails() -> None:
    chains = [{"tokens": ["a"], "used_at": [], "broken": "refresh refused"}]
    lost = analyse(_record(chains=chains), KILL, 2)
    assert any("refresh refused" in p for p in lost.problems)
    twice = analyse(_record(check_failures=["chain 0: rotated twice"]), KILL, 2)
    assert "chain 0: rotated twice" in twice.problems
