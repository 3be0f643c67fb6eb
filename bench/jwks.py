"""Part ``jwks``: how often a service under load asks the auth server for keys.

The stack of the ``rps`` part (auth server, one FastAPI service built with the
SDK), the service configured with ``jwks_min_refetch_interval`` = 2 s. JWKS
requests are counted *at the auth server* (:mod:`bench.authserver`).

1. **Steady state**: ``/protected`` loaded with 1,000 valid tokens for a few
   seconds; expected JWKS fetches: 0.
2. **Unknown-kid flood**: 10,000 requests, each with a distinct token signed by
   a key the issuer never published, under its own random ``kid``. Every one
   must be refused (401), and the JWKS fetches must not exceed what the
   configured rate allows: ``1 + floor(flood seconds / interval)``.
3. Valid tokens are still accepted after the flood.
"""

from __future__ import annotations

import math
import secrets
import time

from authmesh.jose import Key, sign_jwt
from bench.report import PartResult
from bench.servers import get_request, load
from bench.stack import AUDIENCE, service_stack

__all__ = ["run"]

FLOOD = 10_000
INTERVAL = 0.5
_JWKS = "/.well-known/jwks.json"


def _forged(issuer: str, n: int) -> list[str]:
    key = Key.generate("EdDSA")
    now = int(time.time())
    return [_with_kid(key, issuer, now, i) for i in range(n)]


def _with_kid(key: Key, issuer: str, now: int, i: int) -> str:
    # A fresh kid per token: sign with a copy of the key under that kid.
    other = Key.from_jwk({**key.to_jwk(private=True), "kid": f"unknown-{i}-{secrets.token_hex(4)}"})
    return sign_jwt(
        {
            "iss": issuer,
            "sub": f"attacker-{i}",
            "aud": AUDIENCE,
            "exp": now + 600,
            "iat": now,
            "jti": secrets.token_hex(8),
            "client_id": "web",
        },
        other,
        typ="at+jwt",
    )


def run(budget: float) -> PartResult:
    """Steady state, flood, then a check that valid tokens still pass."""
    started = time.monotonic()
    with service_stack(service_env={"BENCH_JWKS_MIN_REFETCH": str(INTERVAL)}) as stack:
        server, port = stack.server, stack.service.port
        forged = _forged(server.url, FLOOD)
        valid = [get_request("/protected", t) for t in stack.tokens]

        before = server.counts().get(_JWKS, 0)
        steady = load({"port": port, "duration": 5.0, "warmup": 1.0, "requests": valid})
        steady_fetches = server.counts().get(_JWKS, 0) - before

        before = server.counts().get(_JWKS, 0)
        t0 = time.monotonic()
        flood = load(
            {
                "port": port,
                "duration": 120.0,
                "warmup": 0.0,
                "total": FLOOD,
                "requests": [get_request("/protected", t) for t in forged],
            }
        )
        flood_seconds = time.monotonic() - t0
        flood_fetches = server.counts().get(_JWKS, 0) - before
        after = load({"port": port, "duration": 1.0, "warmup": 0.0, "requests": valid})
    allowed = 1 + math.floor(flood_seconds / INTERVAL)
    refused = flood["statuses"].get("401", 0)
    steady_ok = steady_fetches == 0
    flood_ok = flood_fetches <= allowed and refused == flood["count"] == FLOOD
    after_ok = set(after["statuses"]) == {"200"}
    verdicts = [
        f"- **steady state**: {steady_fetches} JWKS requests during {steady['count']} "
        f"authenticated requests — {'met' if steady_ok else 'NOT met'} (0)",
        f"- **flood**: {flood_fetches} JWKS requests for {flood['count']} unknown-kid tokens "
        f"({refused} refused with 401) in {flood_seconds:.1f} s — "
        f"{'met' if flood_ok else 'NOT met'} (≤ {allowed} allowed at one per {INTERVAL:g} s)",
        f"- **after the flood**: valid tokens {'still accepted' if after_ok else 'REFUSED'} "
        f"({after['statuses']})",
    ]
    markdown = (
        "## jwks — key fetches under load and under an unknown-kid flood\n\n"
        f"_{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"{time.monotonic() - started:.0f} s; service `jwks_min_refetch_interval` = "
        f"{INTERVAL:g} s; JWKS requests counted at the auth server._\n\n"
        "| phase | requests to the service | JWKS requests at the server | allowed |\n"
        "| --- | ---: | ---: | ---: |\n"
        f"| steady state, 1,000 valid tokens, 5 s | {steady['count']} ({steady['rps']:.0f}/s) | "
        f"{steady_fetches} | 0 |\n"
        f"| flood, {FLOOD} distinct unknown `kid`s, {flood_seconds:.1f} s | {flood['count']} "
        f"({refused} × 401) | {flood_fetches} | ≤ {allowed} |\n\n"
        "**Targets**:\n\n" + "\n".join(verdicts) + "\n"
    )
    console = [
        f"steady: {steady_fetches} JWKS fetches; flood: {flood_fetches} fetches "
        f"(allowed {allowed}) in {flood_seconds:.1f} s, {refused}/{flood['count']} refused",
    ]
    return PartResult(markdown=markdown, summary=[*console, *verdicts])
