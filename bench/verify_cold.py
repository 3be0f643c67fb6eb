"""Part ``verify_cold``: one first-seen token, verified, per algorithm and library.

Compared, on the same ~380-byte RFC 9068 access token and with every key parsed
once beforehand:

- **floor** — the least a Python verifier can do: split, strict base64url of the
  three parts, ``json.loads`` of header and payload, and the ``cryptography``
  primitive. No header rule and no claim check.
- **authmesh** — :func:`authmesh.jose.verify_jwt` with
  ``VerifyPolicy.for_access_tokens`` (every RFC 8725 rule, ``typ``, ``iss``,
  ``aud``, the RFC 9068 required claims, ``exp``/``nbf``/``iat``).
- **PyJWT** — ``jwt.decode`` with a key object, ``algorithms``, ``audience``,
  ``issuer`` and the required claims.
- **joserfc** — ``jwt.decode`` then a prepared ``JWTClaimsRegistry.validate``.
- **authlib** — ``JsonWebToken.decode`` with ``claims_options``, then ``validate``.

Target: authmesh ≤ 1.1× the floor, and faster than every peer.
"""

from __future__ import annotations

import binascii
import hmac
import itertools
import json
import time
import warnings
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from authmesh.jose import TokenRejected, verify_jwt
from bench import tokens
from bench.harness import Samples, Spread, ratios, run_interleaved
from bench.report import PartResult

__all__ = ["IMPLEMENTATIONS", "TARGET_RATIO", "run", "verifiers"]

# joserfc warns on every EdDSA use (RFC 9864 deprecates the polymorphic "EdDSA"
# name); authlib warns that authlib.jose is deprecated. Neither matters here.
# authlib.deprecate installs an "always" filter when imported, so ours go after it.
import authlib.deprecate  # noqa: F401

warnings.filterwarnings("ignore", message=".*EdDSA is deprecated.*")
warnings.filterwarnings("ignore", message=".*authlib.jose module is deprecated.*")

import jwt as pyjwt  # noqa: E402
from authlib.jose import JsonWebKey, JsonWebToken  # noqa: E402
from authlib.jose.errors import JoseError as AuthlibError  # noqa: E402
from joserfc import jwt as joserfc_jwt  # noqa: E402
from joserfc.errors import JoseError as JoserfcError  # noqa: E402
from joserfc.jwk import JWKRegistry, OctKey  # noqa: E402
from joserfc.jwt import JWTClaimsRegistry  # noqa: E402

IMPLEMENTATIONS = ("floor", "authmesh", "PyJWT", "joserfc", "authlib")
TARGET_RATIO = 1.10
#: Distinct first-seen tokens each implementation cycles through.
_TOKENS = 512

Verify = Callable[[str], Any]
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


def _b64(segment: bytes) -> bytes:
    return binascii.a2b_base64(
        segment.translate(_TO_STANDARD) + b"=" * (-len(segment) % 4), strict_mode=True
    )


def _floor(bt: tokens.BenchToken) -> Verify:
    public = bt.verify_key.public_key
    check: Callable[[bytes, bytes], None]
    if bt.alg == "EdDSA":

        def check(data: bytes, sig: bytes) -> None:
            public.verify(sig, data)

    elif bt.alg == "ES256":
        ecdsa = ec.ECDSA(hashes.SHA256())

        def check(data: bytes, sig: bytes) -> None:
            der = encode_dss_signature(
                int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
            )
            public.verify(der, data, ecdsa)

    elif bt.alg == "RS256":
        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

        def check(data: bytes, sig: bytes) -> None:
            public.verify(sig, data, pkcs1, sha256)

    else:

        def check(data: bytes, sig: bytes) -> None:
            if not hmac.compare_digest(hmac.digest(public, data, "sha256"), sig):
                raise InvalidSignature

    def verify(token: str) -> Any:
        header_b64, payload_b64, sig_b64 = token.encode("ascii").split(b".")
        json.loads(_b64(header_b64))
        claims = json.loads(_b64(payload_b64))
        check(header_b64 + b"." + payload_b64, _b64(sig_b64))
        return claims

    return verify


def _authmesh(bt: tokens.BenchToken) -> Verify:
    keys, policy = bt.keyset(), bt.policy()

    def verify(token: str) -> Any:
        return verify_jwt(token, keys, policy).claims

    return verify


def _pyjwt(bt: tokens.BenchToken) -> Verify:
    key, alg = bt.verify_key.public_key, bt.alg
    options: Any = {"require": list(tokens.REQUIRED)}

    def verify(token: str) -> Any:
        return pyjwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=tokens.AUDIENCE,
            issuer=tokens.ISSUER,
            options=options,
        )

    return verify


def _joserfc(bt: tokens.BenchToken) -> Verify:
    if bt.alg == "HS256":
        key: Any = OctKey.import_key(bt.verify_key.public_key)
    else:
        key = JWKRegistry.import_key(bt.verify_key.to_jwk())
    algorithms = [bt.alg]
    registry = JWTClaimsRegistry(
        iss={"essential": True, "value": tokens.ISSUER},
        aud={"essential": True, "value": tokens.AUDIENCE},
        **{c: {"essential": True} for c in tokens.REQUIRED if c not in ("iss", "aud")},
    )

    def verify(token: str) -> Any:
        decoded = joserfc_jwt.decode(token, key, algorithms=algorithms)
        registry.validate(decoded.claims)
        return decoded.claims

    return verify


def _authlib(bt: tokens.BenchToken) -> Verify:
    jwk = bt.key.to_jwk(private=True) if bt.alg == "HS256" else bt.verify_key.to_jwk()
    key = JsonWebKey.import_key(jwk)
    decoder = JsonWebToken([bt.alg])
    options = {
        "iss": {"essential": True, "value": tokens.ISSUER},
        "aud": {"essential": True, "value": tokens.AUDIENCE},
        **{c: {"essential": True} for c in tokens.REQUIRED if c not in ("iss", "aud")},
    }

    def verify(token: str) -> Any:
        claims = decoder.decode(token, key, claims_options=options)
        claims.validate()
        return claims

    return verify


def verifiers(bt: tokens.BenchToken) -> dict[str, Verify]:
    """Every implementation's verify function for this algorithm's key, by name."""
    return {
        "floor": _floor(bt),
        "authmesh": _authmesh(bt),
        "PyJWT": _pyjwt(bt),
        "joserfc": _joserfc(bt),
        "authlib": _authlib(bt),
    }


_REJECTIONS = (
    TokenRejected,
    InvalidSignature,
    ValueError,
    pyjwt.InvalidTokenError,
    JoserfcError,
    AuthlibError,
)


def _rejects(verify: Verify, token: str) -> bool:
    try:
        verify(token)
    except _REJECTIONS:
        return True
    return False


def _sanity_check(bt: tokens.BenchToken, impls: dict[str, Verify]) -> None:
    """Every implementation accepts the token and rejects a forged one; the
    claim-checking ones also reject a wrong audience. Else the timing is of nothing."""
    head, payload, sig = bt.token.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    forged = f"{head}.{payload}.{flipped}"
    claims = tokens.access_claims()
    claims["aud"] = "billing"
    wrong_aud = bt.sign(claims)
    for name, verify in impls.items():
        if verify(bt.token)["sub"] != tokens.access_claims()["sub"]:
            raise AssertionError(f"{name} {bt.alg}: wrong claims")
        if not _rejects(verify, forged):
            raise AssertionError(f"{name} {bt.alg}: accepted a forged signature")
        if name != "floor" and not _rejects(verify, wrong_aud):
            raise AssertionError(f"{name} {bt.alg}: accepted a wrong audience")


def _table(alg: str, samples: Samples) -> tuple[str, dict[str, Spread], dict[str, Spread]]:
    us = {name: Spread.of(values) for name, values in samples.items()}
    rel = ratios(samples, "floor")
    rows = [
        f"| {name} | {us[name].cell()} | {us[name].range_cell()} | {rel[name].cell(2, '×')} |"
        for name in IMPLEMENTATIONS
    ]
    table = (
        f"#### {alg} ({us['floor'].n} repeats)\n\n"
        "| implementation | µs/token, median (IQR) | min–max | × floor, median (IQR) |\n"
        "| --- | ---: | ---: | ---: |\n" + "\n".join(rows) + "\n"
    )
    return table, us, rel


def run(budget: float) -> PartResult:
    """Measure every algorithm, a quarter of ``budget`` each."""
    started = time.monotonic()
    details: list[str] = []
    summary_rows: list[str] = []
    console: list[str] = []
    verdicts: list[str] = []
    payload_bytes = 0
    for alg in tokens.ALGORITHMS:
        bt = tokens.make(alg)
        payload_bytes = bt.payload_bytes
        impls = verifiers(bt)
        _sanity_check(bt, impls)
        # Distinct tokens (own jti), taken in turn: nothing token-specific can be
        # reused between calls, as for a token the service has never seen.
        now = time.time()
        batch = [bt.sign(tokens.access_claims(now, jti=f"bench-{i:04d}")) for i in range(_TOKENS)]
        cases = [(name, _bind(impls[name], batch)) for name in IMPLEMENTATIONS]
        samples = run_interleaved(cases, budget=budget / len(tokens.ALGORITHMS))
        table, us, rel = _table(alg, samples)
        details.append(table)
        cells = " | ".join(
            f"{us[n].median:.1f} ({rel[n].median:.2f}×)" if n != "floor" else f"{us[n].median:.1f}"
            for n in IMPLEMENTATIONS
        )
        summary_rows.append(f"| {alg} | {cells} |")
        ratio = rel["authmesh"].median
        peers = [n for n in IMPLEMENTATIONS if n not in ("floor", "authmesh")]
        slowest_beaten = all(us["authmesh"].median < us[p].median for p in peers)
        fastest_peer = min(peers, key=lambda p: us[p].median)
        verdict = (
            f"- **{alg}**: authmesh {ratio:.2f}× floor — "
            f"{'met' if ratio <= TARGET_RATIO else 'NOT met'} (≤ {TARGET_RATIO:.2f}×); "
            f"faster than every peer — {'met' if slowest_beaten else 'NOT met'} "
            f"(fastest peer: {fastest_peer}, {us[fastest_peer].median:.1f} µs)"
        )
        verdicts.append(verdict)
        console.append(
            f"{alg:>6}: "
            + "  ".join(f"{n} {us[n].median:.1f}µs" for n in IMPLEMENTATIONS)
            + f"  | authmesh {ratio:.2f}× floor"
        )
    header_cells = " | ".join(
        f"{n} µs" if n == "floor" else f"{n} µs (× floor)" for n in IMPLEMENTATIONS
    )
    markdown = (
        "## verify_cold — first-seen token, per algorithm and library\n\n"
        f"_{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"{time.monotonic() - started:.0f} s; payload {payload_bytes} bytes of JSON._\n\n"
        "Medians over repeats; ratios are per repeat against the floor of the same repeat.\n\n"
        f"| alg | {header_cells} |\n| --- |{' ---: |' * len(IMPLEMENTATIONS)}\n"
        + "\n".join(summary_rows)
        + "\n\n**Target** (authmesh ≤ 1.1× floor, faster than every peer):\n\n"
        + "\n".join(verdicts)
        + "\n\n"
        "What each does: the floor splits, strictly base64url-decodes the three parts, "
        "`json.loads` header and payload and calls the `cryptography` primitive — no "
        "header or claim rule. authmesh applies every rule of "
        "`VerifyPolicy.for_access_tokens` (also `typ: at+jwt`, which no peer checks). "
        "Peers get a pre-parsed key, one allowed algorithm, `iss`, `aud` and the RFC 9068 "
        "required claims. Each implementation is checked first to accept the token and "
        "reject a forged signature (and, but for the floor, a wrong audience).\n\n"
        f"Every implementation cycles through the same {_TOKENS} distinct tokens (own `jti`), "
        "so no work on one token can be reused for the next. They share the header "
        "segment, as every token of one signing key does: authmesh remembers a few "
        "parsed headers that passed the policy-free header rules (bounded memo), and "
        "re-applies the policy's own rules (allowed `alg`, `typ`, `kid` → key) to each "
        "token.\n\n"
        "### Details\n\n" + "\n".join(details)
    )
    return PartResult(markdown=markdown, summary=[*console, *verdicts])


def _bind(verify: Verify, batch: list[str]) -> Callable[[], object]:
    following = itertools.cycle(batch).__next__
    return lambda: verify(following())
