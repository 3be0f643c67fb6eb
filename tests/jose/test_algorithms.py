"""The algorithm layer on its own: its checks hold even over a backend that checks nothing.

CVE-2022-21449 was a backend (Java 15-18) that accepted r = s = 0. The stand-in
keys below accept every signature, so only ``authmesh.jose.algorithms`` stands
between them and a forged token.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from authmesh.jose import Key
from authmesh.jose.algorithms import ALGORITHMS, ES256, HS256, RS256, EdDSA

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
DATA = b"header.payload"


class TrustingECKey:
    """A P-256 public key whose verify() never raises, like a broken backend."""

    curve = ec.SECP256R1()
    key_size = 256

    def verify(self, signature: bytes, data: bytes, algorithm: Any) -> None:
        return None


class TrustingRSAKey:
    """A 2048-bit RSA public key whose verify() never raises."""

    key_size = 2048

    def verify(self, signature: bytes, data: bytes, padding: Any, algorithm: Any) -> None:
        return None


ec.EllipticCurvePublicKey.register(TrustingECKey)
rsa.RSAPublicKey.register(TrustingRSAKey)


def raw(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(raw(0, 0), id="r=s=0"),
        pytest.param(raw(P256_ORDER, P256_ORDER), id="r=s=n"),
        pytest.param(raw(0, 1), id="r=0"),
        pytest.param(raw(1, 0), id="s=0"),
        pytest.param(raw(P256_ORDER, 1), id="r=n"),
        pytest.param(raw(1, P256_ORDER), id="s=n"),
        pytest.param(b"\xff" * 64, id="r=s=2^256-1"),
        pytest.param(raw(1, 1)[:63], id="63-bytes"),
        pytest.param(b"\x00" + raw(1, 1), id="65-bytes"),
    ],
)
def test_es256_refuses_impossible_signatures_over_a_trusting_backend(signature: bytes) -> None:
    assert ES256().verify(TrustingECKey(), DATA, raw(1, 1))  # the stand-in does trust
    assert not ES256().verify(TrustingECKey(), DATA, signature)


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00" * 255, id="255-bytes"),
        pytest.param(b"\x00" * 257, id="257-bytes-leading-zero"),
        pytest.param(b"\x01" * 512, id="512-bytes"),
    ],
)
def test_rs256_refuses_signatures_of_the_wrong_length_over_a_trusting_backend(
    signature: bytes,
) -> None:
    assert RS256().verify(TrustingRSAKey(), DATA, b"\x01" * 256)
    assert not RS256().verify(TrustingRSAKey(), DATA, signature)


@pytest.mark.parametrize(
    ("algorithm", "wrong_key"),
    [
        pytest.param(HS256(), lambda: TrustingRSAKey(), id="HS256-with-RSA-key"),
        pytest.param(HS256(), lambda: "a string secret", id="HS256-with-str"),
        pytest.param(RS256(), lambda: TrustingECKey(), id="RS256-with-EC-key"),
        pytest.param(RS256(), lambda: b"secret" * 8, id="RS256-with-bytes"),
        pytest.param(ES256(), lambda: TrustingRSAKey(), id="ES256-with-RSA-key"),
        pytest.param(
            EdDSA(), lambda: ec.generate_private_key(ec.SECP256R1()).public_key(), id="EdDSA-EC"
        ),
        pytest.param(EdDSA(), lambda: b"secret" * 8, id="EdDSA-with-bytes"),
    ],
)
def test_an_algorithm_never_verifies_with_another_kind_of_key(
    algorithm: Any, wrong_key: Any
) -> None:
    signature = b"\x01" * {"HS256": 32, "RS256": 256, "ES256": 64, "EdDSA": 64}[algorithm.name]
    assert not algorithm.verify(wrong_key(), DATA, signature)


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256", "HS256"])
def test_each_algorithm_signs_and_verifies(alg: str) -> None:
    key = Key.generate(alg)
    signature = key.sign(DATA)
    assert len(signature) == {"HS256": 32, "RS256": 256, "ES256": 64, "EdDSA": 64}[alg]
    assert key.verify(DATA, signature)
    assert not key.verify(DATA + b".", signature)
    assert not key.verify(DATA, signature[:-1] + bytes([signature[-1] ^ 1]))
    assert ALGORITHMS[alg].name == alg


def test_eddsa_refuses_a_signature_of_the_wrong_length() -> None:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    for size in (0, 63, 65, 128):
        assert not EdDSA().verify(public, DATA, b"\x00" * size)
