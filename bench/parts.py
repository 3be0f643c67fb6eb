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


def _rps(budget: float) -> PartResult:
    from bench import rps

    return rps.run(budget)


def _revocation(budget: float) -> PartResult:
    from bench import revocation

    return revocation.run(budget)


def _token_endpoint(budget: float) -> PartResult:
    from bench import token_endpoint

    return token_endpoint.run(budget)


def _signin(budget: float) -> PartResult:
    from bench import signin

    return signin.run(budget)


def _dpop(budget: float) -> PartResult:
    from bench import dpop

    return dpop.run(budget)


def _jwks(budget: float) -> PartResult:
    from bench import jwks

    return jwks.run(budget)


PARTS: list[Part] = [
    Part("verify_cold", "first-seen token: floor, authmesh and peers", 95.0, _verify_cold),
    Part("verify_warm", "repeat token through the service SDK", 50.0, _verify_warm),
    Part("rps", "FastAPI service: /open vs /protected vs PyJWT", 105.0, _rps),
    Part("revocation", "block -> rejected by 20 services; state memory", 55.0, _revocation),
    Part("token_endpoint", "grants per server CPU-second, SQLite and PG", 70.0, _token_endpoint),
    Part("signin", "browser sign-ins and SSO per server CPU-second", 60.0, _signin),
    Part("jwks", "JWKS fetches: steady state and an unknown-kid flood", 45.0, _jwks),
    Part("dpop", "a DPoP-protected request over its proof's signature", 15.0, _dpop),
]

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
