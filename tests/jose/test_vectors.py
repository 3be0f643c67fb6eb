"""Known-answer tests: the RFC 7515 Appendix A.1-A.3 and RFC 8037 Appendix A.4 examples.

The JWKs and compact tokens in ``vectors/`` are copied from the RFCs. They carry no
``kid``, ``typ: JWT`` (or none) and an ``exp`` of March 2011, so the verifier gets a
one-key set, ``types=None`` and a clock frozen before that ``exp``.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from authmesh.jose import (
    BadSignature,
    Key,
    KeySet,
    TokenExpired,
    TokenRejected,
    VerifyPolicy,
    verify_jws,
    verify_jwt,
)
from authmesh.jose.b64 import b64url_decode

VECTORS = Path(__file__).parent / "vectors"
JWT_VECTORS = ("rfc7515-a1-hs256", "rfc7515-a2-rs256", "rfc7515-a3-es256")
ALL_VECTORS = (*JWT_VECTORS, "rfc8037-a4-ed25519")
RFC_EXP = 1300819380


def load(name: str) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text())
    return vector


def verifier_keys(vector: dict[str, Any]) -> KeySet:
    """The key a verifier holds: the public half, or the HMAC secret itself."""
    key = Key.from_jwk(vector["jwk"])
    return KeySet([key if key.is_symmetric else key.public()])


def rfc_policy() -> VerifyPolicy:
    return VerifyPolicy(types=None, issuer="joe", required_claims=frozenset({"exp", "iss"}))


def before_exp() -> float:
    return RFC_EXP - 60.0


@pytest.mark.parametrize("name", JWT_VECTORS)
def test_rfc7515_token_verifies(name: str) -> None:
    vector = load(name)
    verified = verify_jwt(vector["token"], verifier_keys(vector), rfc_policy(), clock=before_exp)
    assert verified.claims == vector["claims"]
    assert verified.header == vector["header"]
    assert verified.alg == vector["alg"]
    assert verified.kid is None


@pytest.mark.parametrize("name", JWT_VECTORS)
def test_rfc7515_token_is_expired_by_the_real_clock(name: str) -> None:
    vector = load(name)
    with pytest.raises(TokenExpired):
        verify_jwt(vector["token"], verifier_keys(vector), rfc_policy())


def test_rfc8037_ed25519_jws_verifies() -> None:
    vector = load("rfc8037-a4-ed25519")
    verified = verify_jws(vector["token"], verifier_keys(vector), VerifyPolicy(types=None))
    assert verified.payload == vector["payload"].encode()
    assert verified.header == vector["header"]
    assert verified.alg == "EdDSA"


@pytest.mark.parametrize("name", ALL_VECTORS)
def test_rfc_token_verifies_as_plain_jws(name: str) -> None:
    vector = load(name)
    payload_b64 = vector["token"].split(".")[1]
    verified = verify_jws(vector["token"], verifier_keys(vector), VerifyPolicy(types=None))
    assert verified.payload == b64url_decode(payload_b64.encode())


@pytest.mark.parametrize("name", [n for n in ALL_VECTORS if load(n)["deterministic"]])
def test_rfc_signature_is_reproduced(name: str) -> None:
    """HS256, RS256 (PKCS#1 v1.5) and Ed25519 are deterministic: signing gives the RFC bytes."""
    vector = load(name)
    header_b64, payload_b64, signature_b64 = vector["token"].split(".")
    key = Key.from_jwk(vector["jwk"])
    signature = key.sign(f"{header_b64}.{payload_b64}".encode())
    assert signature == b64url_decode(signature_b64.encode())


def test_rfc7515_a2_rsa_key_is_2048_bits_and_loads() -> None:
    key = Key.from_jwk(load("rfc7515-a2-rs256")["jwk"])
    assert key.alg == "RS256"
    assert key.is_private
    assert key.public_key.key_size == 2048


def test_rfc7515_a3_private_key_matches_its_public_point() -> None:
    vector = load("rfc7515-a3-es256")
    key = Key.from_jwk(vector["jwk"])
    public = key.public().to_jwk()
    assert (public["x"], public["y"]) == (vector["jwk"]["x"], vector["jwk"]["y"])
    assert key.public().verify(b"data", key.sign(b"data"))


def test_rfc8037_thumbprint_is_the_default_kid() -> None:
    """RFC 8037 A.3 gives the RFC 7638 thumbprint of the A.1 key."""
    vector = load("rfc8037-a4-ed25519")
    assert Key.from_jwk(vector["jwk"]).kid == vector["thumbprint"]
    assert Key.from_jwk(vector["jwk"]).public().kid == vector["thumbprint"]


def _verifier(name: str) -> Callable[[str | bytes], object]:
    """The vector's verify call, with its key parsed once."""
    keys = verifier_keys(load(name))
    policy = rfc_policy() if name in JWT_VECTORS else VerifyPolicy(types=None)
    if name in JWT_VECTORS:
        return lambda token: verify_jwt(token, keys, policy, clock=before_exp)
    return lambda token: verify_jws(token, keys, policy)


@pytest.mark.parametrize("name", ALL_VECTORS)
def test_rfc_token_with_any_one_character_changed_is_rejected(name: str) -> None:
    """Every position (header, payload, signature, dots) x every other printable ASCII char."""
    token: str = load(name)["token"]
    verify = _verifier(name)
    verify(token)  # the unchanged token passes: the loop below can fail
    accepted: list[tuple[int, str]] = []
    for position, original in enumerate(token):
        for char in string.printable[:95]:
            if char == original:
                continue
            mutant = token[:position] + char + token[position + 1 :]
            try:
                verify(mutant)
            except TokenRejected:
                continue
            accepted.append((position, char))
    assert accepted == []


@pytest.mark.parametrize("name", ALL_VECTORS)
def test_rfc_token_with_any_one_byte_bit_flipped_is_rejected(name: str) -> None:
    """As bytes: each of the 8 bits of each byte, including flips to non-ASCII."""
    token = load(name)["token"].encode()
    verify = _verifier(name)
    verify(token)
    accepted: list[tuple[int, int]] = []
    for position in range(len(token)):
        for bit in range(8):
            mutant = bytearray(token)
            mutant[position] ^= 1 << bit
            try:
                verify(bytes(mutant))
            except TokenRejected:
                continue
            accepted.append((position, bit))
    assert accepted == []


@pytest.mark.parametrize("name", ALL_VECTORS)
def test_rfc_signature_from_another_vector_is_rejected(name: str) -> None:
    """Swap in the other examples' signature parts: a bad signature, whatever its length."""
    vector = load(name)
    header_b64, payload_b64, _ = vector["token"].split(".")
    verify = _verifier(name)
    for other in ALL_VECTORS:
        if other == name:
            continue
        foreign = load(other)["token"].split(".")[2]
        with pytest.raises(BadSignature):
            verify(f"{header_b64}.{payload_b64}.{foreign}")
