"""Part ``dpop``: what a DPoP-protected request costs a service over the proof's signature.

A service checks each request's proof (RFC 9449 §4.3): header, key, signature,
method, URL, ``iat``, ``ath`` and replay. The floor is the signature check
alone, with the public key already parsed: nothing can be cheaper, since the
proof is new on every request. Measured per algorithm, interleaved:

- **signature** — ``Key.verify`` of the proof's signing input (the floor);
- **proof check** — :func:`authmesh.dpop.verify_proof`, everything but replay;
- **replay record** — :meth:`ReplayCache.first_use` of a new ``jti``.

Target: proof check plus replay record at most 1.10× the floor.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from authmesh.dpop import ReplayCache, make_proof, verify_proof
from authmesh.jose import Key
from authmesh.jose.b64 import b64url_decode
from bench.harness import Spread, ratios, run_interleaved
from bench.report import PartResult

__all__ = ["ALGORITHMS", "CASES", "TARGET", "run"]

ALGORITHMS = ("EdDSA", "ES256")
CASES = ("signature", "proof check", "replay record")
TARGET = 1.10
_URL = "https://orders.internal/orders/7"
_TOKEN = "eyJ.access.token"


def _cases(alg: str) -> list[tuple[str, Callable[[], object]]]:
    key = Key.generate(alg)
    proof = make_proof(key, method="GET", url=_URL, access_token=_TOKEN)
    head, body, signature = proof.encode().split(b".")
    signing_input, raw_signature = head + b"." + body, b64url_decode(signature)
    public = key.public()
    cache = ReplayCache(max_entries=1_000_000)
    ids = itertools.count()
    now = time.time()
    if verify_proof(proof, method="GET", url=_URL, now=now, access_token=_TOKEN).jkt != (
        key.thumbprint()
    ):
        raise AssertionError("the proof check returned another key")
    return [
        ("signature", lambda: public.verify(signing_input, raw_signature)),
        (
            "proof check",
            lambda: verify_proof(proof, method="GET", url=_URL, now=now, access_token=_TOKEN),
        ),
        ("replay record", lambda: cache.first_use(f"jkt:{next(ids)}", now + 65)),
    ]


def run(budget: float) -> PartResult:
    """Measure each algorithm, half of ``budget`` each."""
    started = time.monotonic()
    rows, console, verdicts = [], [], []
    for alg in ALGORITHMS:
        samples = run_interleaved(_cases(alg), budget=budget / len(ALGORITHMS))
        # Per repeat: the whole check (proof + replay) over the floor measured beside it.
        total = [
            p + r for p, r in zip(samples["proof check"], samples["replay record"], strict=True)
        ]
        samples["proof check + replay"] = total
        us = {name: Spread.of(values) for name, values in samples.items()}
        rel = ratios(samples, "signature")
        ratio = rel["proof check + replay"].median
        rows.append(
            f"| {alg} | {us['signature'].cell(1)} | {us['proof check'].cell(1)} | "
            f"{us['replay record'].cell(2)} | {ratio:.3f}× |"
        )
        console.append(
            f"{alg:>6}: signature {us['signature'].median:.1f}µs, proof check "
            f"{us['proof check'].median:.1f}µs, replay {us['replay record'].median:.2f}µs"
        )
        verdicts.append(
            f"- **{alg}**: a DPoP proof costs {ratio:.3f}× its signature check — "
            f"{'met' if ratio <= TARGET else 'NOT met'} (≤ {TARGET:.2f}×)"
        )
    markdown = (
        "## dpop — a DPoP proof over its signature check\n\n"
        f"_{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"{time.monotonic() - started:.0f} s._\n\n"
        "A service checks a new proof on every request: its header (decoded, its key "
        "imported and its thumbprint hashed once per client key, then remembered), its "
        "signature, method, URL, `iat`, `ath`, and that its `jti` is new. The floor is "
        "the signature check with the key already parsed.\n\n"
        "| alg | signature (µs) | proof check (µs) | replay record (µs) | whole ÷ signature |\n"
        "| --- | ---: | ---: | ---: | ---: |\n"
        + "\n".join(rows)
        + "\n\n"
        + "\n".join(verdicts)
        + "\n"
    )
    return PartResult(markdown=markdown, summary=[*console, *verdicts])
