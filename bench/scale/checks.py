"""What the scale run's record proves: verdicts and figures, free of I/O.

The record is :class:`bench.scale.driver.Record` as JSON; the events are the
kills and restarts of replicas, as ``(what, wall-clock instant, replica)``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KILL_WINDOW", "Analysis", "analyse", "percentile"]

#: Failures are expected only this long after a kill or restart (seconds): the
#: balancer's health checks need ~1 s to take a dead replica out of the pool.
KILL_WINDOW = 5.0


def percentile(values: list[float], p: float) -> float:
    """The ``p`` quantile (0..1) by the nearest-rank method; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


@dataclass
class Analysis:
    """Figures and verdicts of one run."""

    duration: float
    grants: Counter[str]
    per_second: dict[str, list[int]]
    block_latencies_ms: list[tuple[float, float]]  # (seconds into the run, last service ms)
    first_service_ms: list[float]
    from_sent_ms: list[float]  # block request sent → last service
    windows: list[tuple[str, float, float]]  # (label, start, end) in seconds into the run
    failures: Counter[str]
    failures_in_windows: int
    problems: list[str] = field(default_factory=list)
    checks: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def latency(self, p: float, *, in_window: bool | None = None) -> float:
        values = [
            ms
            for at, ms in self.block_latencies_ms
            if in_window is None or in_window == self._in_window(at)
        ]
        return percentile(values, p)

    def _in_window(self, at: float) -> bool:
        return any(start <= at <= end for _label, start, end in self.windows)


def analyse(
    record: dict[str, Any], events: list[tuple[str, float, str]], services: int
) -> Analysis:
    """Check the record against the run's promises; collect the figures."""
    t0, t1 = record["started"], record["stopped"]
    duration = t1 - t0
    windows = [(f"{what} {name}", at - t0, at - t0 + KILL_WINDOW) for what, at, name in events]
    problems: list[str] = []

    grants: Counter[str] = Counter()
    seconds = int(duration) + 1
    per_second: dict[str, list[int]] = {}
    for at, kind in record["done"]:
        if kind == "check" or not t0 <= at <= t1 + 1:
            continue
        grants[kind] += 1
        per_second.setdefault(kind, [0] * (seconds + 1))[min(seconds, int(at - t0))] += 1

    failures: Counter[str] = Counter()
    in_windows = 0
    for f in record["failures"]:
        if f["kind"] == "check":
            continue  # the final checks' refusals are expected, and checked there
        failures[f"{f['kind']}: {f['what']}"] += 1
        at = f["at"] - t0
        if not f["retryable"]:
            problems.append(f"a non-retryable error at {at:.1f} s: {f['kind']} {f['what']}")
        elif any(start - 0.5 <= at <= end for _l, start, end in windows):
            in_windows += 1
        else:
            problems.append(f"an error outside the kill and restart windows at {at:.1f} s: {f}")

    latencies: list[tuple[float, float]] = []
    firsts: list[float] = []
    from_sent: list[float] = []
    for block in record["blocks"]:
        revoked = block["revoked"]
        if len(revoked) != services:
            problems.append(f"block {block['ident']} reached {len(revoked)} of {services} services")
            continue
        instants = list(revoked.values())
        latencies.append((block["sent"] - t0, (max(instants) - block["answered"]) * 1e3))
        firsts.append((min(instants) - block["answered"]) * 1e3)
        from_sent.append((max(instants) - block["sent"]) * 1e3)
    if not latencies:
        problems.append("no block was measured")

    for n, chain in enumerate(record["chains"]):
        if chain["broken"]:
            problems.append(f"chain {n}: {chain['broken']}")
    problems.extend(record["check_failures"])
    if not record["checks"].get("last token rotates"):
        problems.append("no chain was checked")
    return Analysis(
        duration=duration,
        grants=grants,
        per_second=per_second,
        block_latencies_ms=latencies,
        first_service_ms=firsts,
        from_sent_ms=from_sent,
        windows=windows,
        failures=failures,
        failures_in_windows=in_windows,
        problems=problems,
        checks=dict(record["checks"]),
    )
