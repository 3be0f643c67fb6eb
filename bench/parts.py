"""The benchmark parts, in run order, each with its time budget (seconds)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.report import PartResult

__all__ = ["PARTS", "TOTAL_LIMIT", "Part", "select"]

#: The whole run must stay under this (seconds); budgets are checked against it.
TOTAL_LIMIT = 600.0


@dataclass(frozen=True, slots=True)
class Part:
    """One part of the benchmark plan."""

    name: str
    title: str
    budget: float
    run: Callable[[float], PartResult]


def _verify_cold(budget: float) -> PartResult:
    from bench import verify_cold

    return verify_cold.run(budget)


def _verify_warm(budget: float) -> PartResult:
    from bench import verify_warm

    return verify_warm.run(budget)


PARTS: list[Part] = [
    Part("verify_cold", "first-seen token: floor, authmesh and peers", 160.0, _verify_cold),
    Part("verify_warm", "repeat token through the service SDK", 80.0, _verify_warm),
]
# Later parts of the plan (signing, the HTTP path, the revocation feed) add here.

assert sum(p.budget for p in PARTS) * 1.2 < TOTAL_LIMIT, "part budgets exceed the run limit"


def select(only: list[str] | None) -> list[Part]:
    """The parts named by ``only``: an exact name, else every part with that prefix.

    Raises:
        SystemExit: a name matches no part.
    """
    if not only:
        return list(PARTS)
    chosen: list[Part] = []
    for name in only:
        exact = [p for p in PARTS if p.name == name]
        matched = exact or [p for p in PARTS if p.name.startswith(name)]
        if not matched:
            names = ", ".join(p.name for p in PARTS)
            raise SystemExit(f"no benchmark part {name!r}; parts: {names}")
        chosen.extend(p for p in matched if p not in chosen)
    return [p for p in PARTS if p in chosen]
