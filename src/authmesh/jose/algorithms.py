"""The four JWS algorithms authmesh signs and verifies (RFC 7518, RFC 8037).

Each algorithm is a small object behind :class:`Algorithm`; the primitives come
from ``cryptography``. Verification never raises on a bad signature, it returns
``False``, so the caller maps every failure to one reason.
"""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

__all__ = ["ALGORITHMS", "ES256", "HS256", "RS256", "Algorithm", "EdDSA"]

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_SHA256 = hashes.SHA256()
_PKCS1 = padding.PKCS1v15()
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


class Algorithm(ABC):
    """One JWS ``alg``: its key type and its sign/verify primitives."""

    name: ClassVar[str]
    kty: ClassVar[str]

    @abstractmethod
    def sign(self, private_key: Any, data: bytes) -> bytes:
        """Sign ``data`` with the algorithm's private (or secret) key."""

    @abstractmethod
    def verify(self, public_key: Any, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is valid for ``data``; never raises on a bad one."""


class HS256(Algorithm):
    """HMAC with SHA-256 (RFC 7518 §3.2); the key is a byte string."""

    name = "HS256"
    kty = "oct"

    def sign(self, private_key: Any, data: bytes) -> bytes:
        return hmac.digest(private_key, data, hashlib.sha256)

    def verify(self, public_key: Any, data: bytes, signature: bytes) -> bool:
        if not isinstance(public_key, bytes):  # never an HMAC keyed with a public key
            return False
        return hmac.compare_digest(hmac.digest(public_key, data, hashlib.sha256), signature)


class RS256(Algorithm):
    """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3)."""

    name = "RS256"
    kty = "RSA"

    def sign(self, private_key: Any, data: bytes) -> bytes:
        return bytes(private_key.sign(data, _PKCS1, _SHA256))

    def verify(self, public_key: Any, data: bytes, signature: bytes) -> bool:
        if not isinstance(public_key, rsa.RSAPublicKey):
            return False
        if len(signature) != (public_key.key_size + 7) // 8:
            return False
        try:
            public_key.verify(signature, data, _PKCS1, _SHA256)
        except InvalidSignature:
            return False
        return True


class ES256(Algorithm):
    """ECDSA on P-256 with SHA-256 (RFC 7518 §3.4): a 64-byte ``R || S`` signature."""

    name = "ES256"
    kty = "EC"

    def sign(self, private_key: Any, data: bytes) -> bytes:
        r, s = decode_dss_signature(private_key.sign(data, _ECDSA_SHA256))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verify(self, public_key: Any, data: bytes, signature: bytes) -> bool:
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or len(signature) != 64:
            return False
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        # Zero or out-of-range R/S is the "psychic signature" (CVE-2022-21449): refuse
        # it here rather than trust every backend to.
        if not (0 < r < _P256_ORDER and 0 < s < _P256_ORDER):
            return False
        try:
            public_key.verify(encode_dss_signature(r, s), data, _ECDSA_SHA256)
        except InvalidSignature:
            return False
        return True


class EdDSA(Algorithm):
    """EdDSA with Ed25519 (RFC 8037 §3.1)."""

    name = "EdDSA"
    kty = "OKP"

    def sign(self, private_key: Any, data: bytes) -> bytes:
        return bytes(private_key.sign(data))

    def verify(self, public_key: Any, data: bytes, signature: bytes) -> bool:
        if not isinstance(public_key, ed25519.Ed25519PublicKey) or len(signature) != 64:
            return False
        try:
            public_key.verify(signature, data)
        except InvalidSignature:
            return False
        return True


ALGORITHMS: dict[str, Algorithm] = {alg.name: alg for alg in (EdDSA(), ES256(), RS256(), HS256())}
