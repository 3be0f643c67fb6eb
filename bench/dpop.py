"""Part ``dpop``: what a DPoP-protected request costs a service over the proof's signature.

A service checks each request's proof (RFC 9449 §4.3, §7): header, key, signature,
method, URL, ``iat``, ``ath``, replay, and that the token is bound to the proof's
key. The floor is the signature check alone, with the public key already parsed:
nothing can be cheaper, since the proof is new on every request. Measured per
algorithm, interleaved, over a pool of distinct proofs by one client key (a new
``jti`` each, so the replay cache records every one):

- **signature** — :meth:`Key.verify` of the proof's signing input: the JWS check
  (for ES256 the ``R || S`` form and range check too), the floor;
- **request check** — :meth:`ProofChecker.check`, what every SDK adapter calls:
  every check of the proof, its replay record, and the ``cnf.jkt`` binding, for a
  real-size access token as the SDK's verified-token cache hands it back;
- **cryptography alone** — the ``cryptography`` call under ``Key.verify``, for
  reference (the JWS wrapper's own cost).

The replay cache holds half the pool, so each new proof evicts the oldest one, as
expiry does in a busy service, and a proof comes round again only once forgotten.

Target: request check at most 1.10× the signature.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from authmesh.dpop import make_proof
from authmesh.errors import InvalidDpopProof
from authmesh.jose import Key, sign_jwt
from authmesh.jose.b64 import b64url_decode, b64url_encode
from authmesh.service.dpop import ProofChecker
from authmesh.service.principal import Principal
from bench import tokens
from bench.harness import Spread, ratios, run_interleaved
from bench.machine import load_average
from bench.report import PartResult

__all__ = ["ALGORITHMS", "CASES", "POOL", "TARGET", "cases", "run"]

ALGORITHMS = ("EdDSA", "ES256")
CASES = ("signature", "request check", "cryptography alone")
TARGET = 1.10
#: Distinct proofs per algorithm, cycled through by every case.
POOL = 4096
_URL = "https://orders.internal/orders/7"


def _bound_principal(client_key: Key) -> Principal:
    """A user's access token bound to ``client_key``, as the SDK's verifier returns it."""
    claims = {**tokens.access_claims(), "cnf": {"jkt": client_key.thumbprint()}}
    token = sign_jwt(claims, Key.generate("ES256"), typ="at+jwt")
    return Principal.from_claims(claims, token)


def _proofs(client_key: Key, token: str, count: int) -> list[str]:
    """``count`` proofs for ``GET _URL`` naming ``token``, as ``make_proof`` writes them."""
    head, body, _ = make_proof(client_key, method="GET", url=_URL, access_token=token).split(".")
    claims: dict[str, Any] = json.loads(b64url_decode(body.encode()))
    proofs = []
    for _ in range(count):  # make_proof re-exports the public JWK each time: too slow here
        claims["jti"] = str(uuid.uuid4())
        payload = b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = head.encode() + b"." + payload
        signature = b64url_encode(client_key.sign(signing_input))
        proofs.append((signing_input + b"." + signature).decode())
    return proofs


def _cryptography_args(public: Key, signing_input: bytes, signature: bytes) -> tuple[Any, ...]:
    """What ``public.public_key.verify`` takes for this JWS signature."""
    if public.alg == "ES256":
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        return encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256())
    return signature, signing_input


def cases(alg: str, *, pool: int = POOL) -> list[tuple[str, Callable[[], object]]]:
    """The part's cases for ``alg`` over ``pool`` distinct proofs."""
    client_key = Key.generate(alg)
    public = client_key.public()
    principal = _bound_principal(client_key)
    checker = ProofChecker(max_proofs=pool // 2)
    extra, *proofs = _proofs(client_key, principal.token, pool + 1)

    def url() -> str:
        return _URL

    checker.check(principal, "dpop", [extra], "GET", url)
    try:
        checker.check(principal, "dpop", [extra], "GET", url)
    except InvalidDpopProof:
        pass
    else:
        raise AssertionError("a replayed proof was accepted")

    signatures = []
    for proof in proofs:
        signing_input, _, signature = proof.encode().rpartition(b".")
        signatures.append((signing_input, b64url_decode(signature)))
    raw = [_cryptography_args(public, *pair) for pair in signatures]
    presented = itertools.cycle([[proof] for proof in proofs])
    next_signature, next_raw = itertools.cycle(signatures).__next__, itertools.cycle(raw).__next__
    verify, raw_verify, check = public.verify, public.public_key.verify, checker.check
    return [
        ("signature", lambda: verify(*next_signature())),
        ("request check", lambda: check(principal, "dpop", next(presented), "GET", url)),
        ("cryptography alone", lambda: raw_verify(*next_raw())),
    ]


def run(budget: float) -> PartResult:
    """Measure each algorithm, half of ``budget`` each (making the proofs included)."""
    started = time.monotonic()
    load_at_start = load_average()
    rows, console, verdicts = [], [], []
    for i, alg in enumerate(ALGORITHMS):
        part_started = time.monotonic()
        measured = cases(alg)
        remaining = budget * (i + 1) / len(ALGORITHMS) - (time.monotonic() - started)
        samples = run_interleaved(measured, budget=max(remaining, 1.0))
        us = {name: Spread.of(values) for name, values in samples.items()}
        rel = ratios(samples, "signature")
        ratio = rel["request check"]
        rows.append(
            f"| {alg} | {us['signature'].cell(1)} | {us['request check'].cell(1)} | "
            f"{us['cryptography alone'].cell(1)} | {ratio.cell(3, '×')} |"
        )
        console.append(
            f"{alg:>6}: signature {us['signature'].median:.1f}µs, request check "
            f"{us['request check'].median:.1f}µs, cryptography alone "
            f"{us['cryptography alone'].median:.1f}µs ({us['signature'].n} repeats, "
            f"{time.monotonic() - part_started:.0f} s)"
        )
        verdicts.append(
            f"- **{alg}**: a DPoP-protected request costs {ratio.median:.3f}× its proof's "
            f"signature check — {'met' if ratio.median <= TARGET else 'NOT met'} "
            f"(≤ {TARGET:.2f}×)"
        )
    markdown = (
        "## dpop — a DPoP-protected request over its proof's signature check\n\n"
        f"_{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"{time.monotonic() - started:.0f} s, load average {load_at_start} at the start and "
        f"{load_average()} at the end: a loaded machine widens the spread and inflates "
        "the ratio (the Python around the signature suffers more from neighbours than "
        "the signature does); `python -m bench.dpop_instructions` counts the same two "
        "cases in CPU instructions, which no load changes._\n\n"
        "What `ProofChecker.check` (every SDK adapter's DPoP step) costs per request, "
        f"over {POOL} distinct proofs by one client key: the proof's header (decoded, "
        "its key imported and its thumbprint hashed once per client key, then "
        "remembered), its signature, method, URL, `iat`, `ath` (of a real-size access "
        "token), its `jti` recorded as new (the replay cache full, so each new proof "
        "evicts the oldest), and the token's `cnf.jkt` binding. The floor is "
        "`Key.verify` of the same proofs with the key already parsed; `cryptography` "
        "alone is the primitive under it, for reference.\n\n"
        "| alg | signature (µs) | request check (µs) | cryptography alone (µs) "
        "| request ÷ signature |\n"
        "| --- | ---: | ---: | ---: | ---: |\n"
        + "\n".join(rows)
        + "\n\n"
        + "\n".join(verdicts)
        + "\n"
    )
    return PartResult(markdown=markdown, summary=[*console, *verdicts])
