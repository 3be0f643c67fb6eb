"""Timing and statistics shared by the benchmark parts.

A *case* is a name and a zero-argument callable doing one operation (one token
verification). :func:`run_interleaved` times every case in batches, round-robin
within each repeat, and returns microseconds per operation for each repeat.
"""

from __future__ import annotations

import gc
import itertools
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Case", "Samples", "Spread", "calibrate", "ratios", "run_interleaved"]

Case = tuple[str, Callable[[], object]]
#: name -> microseconds per operation, one value per repeat (same length for all).
Samples = dict[str, list[float]]


@dataclass(frozen=True, slots=True)
class Spread:
    """The median of repeated measurements and how far they spread."""

    median: float
    q1: float
    q3: float
    lo: float
    hi: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """Summarise at least one value (quartiles by the inclusive method)."""
        if not values:
            raise ValueError("no values")
        if len(values) == 1:
            v = values[0]
            return cls(v, v, v, v, v, 1)
        q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
        return cls(median, q1, q3, min(values), max(values), len(values))

    def cell(self, digits: int = 1, unit: str = "") -> str:
        """``median (q1–q3)`` for a Markdown table."""
        f = f"{{:.{digits}f}}"
        return f"{f.format(self.median)}{unit} ({f.format(self.q1)}–{f.format(self.q3)})"

    def range_cell(self, digits: int = 1) -> str:
        """``min–max`` for a Markdown table."""
        f = f"{{:.{digits}f}}"
        return f"{f.format(self.lo)}–{f.format(self.hi)}"


def _time_batch(fn: Callable[[], object], n: int) -> float:
    """Microseconds per call of ``fn`` over ``n`` calls (loop overhead included)."""
    loop = itertools.repeat(None, n)
    start = time.perf_counter_ns()
    for _ in loop:
        fn()
    return (time.perf_counter_ns() - start) / n / 1000.0


def calibrate(fn: Callable[[], object], batch_seconds: float) -> int:
    """How many calls of ``fn`` fill about ``batch_seconds`` (at least 10)."""
    n = 10
    while True:
        per_call_us = _time_batch(fn, n)
        if per_call_us * n >= 5_000:  # at least 5 ms measured: good enough to scale
            break
        n *= 4
    return max(10, int(batch_seconds * 1e6 / per_call_us))


def run_interleaved(
    cases: Sequence[Case],
    *,
    budget: float,
    batch_seconds: float = 0.02,
    min_repeats: int = 5,
    max_repeats: int = 101,
) -> Samples:
    """Time ``cases`` round-robin: each repeat runs one batch of every case.

    The order rotates each repeat, so no case always runs first (after a pause) or
    last. Repeats stop at ``max_repeats`` or once ``budget`` seconds have passed
    and ``min_repeats`` are done. The garbage collector is off during batches and
    runs between them, as in :mod:`timeit`; objects that exist before
    the first batch are frozen out of its way (:func:`gc.freeze`).

    Returns:
        Microseconds per call, per case, one value per repeat.
    """
    deadline = time.monotonic() + budget
    sizes = {name: calibrate(fn, batch_seconds) for name, fn in cases}
    samples: Samples = {name: [] for name, _ in cases}
    gc_was_enabled = gc.isenabled()
    # Objects made in setup (keys, revocation state) move out of the collector's
    # reach, so the collection before each batch stays cheap and alike for all.
    gc.collect()
    gc.freeze()
    try:
        for repeat in range(max_repeats):
            if repeat >= min_repeats and time.monotonic() >= deadline:
                break
            shift = repeat % len(cases)
            for name, fn in [*cases[shift:], *cases[:shift]]:
                gc.collect()
                gc.disable()
                try:
                    samples[name].append(_time_batch(fn, sizes[name]))
                finally:
                    if gc_was_enabled:
                        gc.enable()
    finally:
        gc.unfreeze()
        if gc_was_enabled:
            gc.enable()
    return samples


def ratios(samples: Mapping[str, list[float]], reference: str) -> dict[str, Spread]:
    """Each case's per-repeat ratio to ``reference`` in the same repeat, summarised."""
    ref = samples[reference]
    return {
        name: Spread.of([v / r for v, r in zip(values, ref, strict=True)])
        for name, values in samples.items()
    }
