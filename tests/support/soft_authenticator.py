"""A software WebAuthn authenticator for HTTP-level tests: it makes the registration and
assertion answers a browser would post, for any origin and challenge the test picks,
so the server's checks (challenge, origin, RP ID, owner, counter) can be attacked."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["SoftPasskey", "b64url", "challenge_of_options"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def challenge_of_options(options_json: str) -> bytes:
    """The challenge of a ``PublicKeyCredential*Options`` JSON."""
    return _unb64url(json.loads(options_json)["challenge"])


_UP, _UV, _AT = 0x01, 0x04, 0x40


@dataclass
class SoftPasskey:
    """One ES256 credential for ``rp_id`` (device-bound unless told)."""

    rp_id: str
    user_handle: bytes = b""
    credential_id: bytes = field(default_factory=lambda: os.urandom(16))
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    counter: int = 0

    def _cose(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    @staticmethod
    def _client_data(kind: str, challenge: bytes, origin: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": b64url(challenge), "origin": origin, "crossOrigin": False}
        ).encode()

    def register(self, challenge: bytes, origin: str) -> str:
        """The ``navigator.credentials.create`` answer, as the page's script posts it."""
        auth_data = (
            hashlib.sha256(self.rp_id.encode()).digest()
            + bytes([_UP | _UV | _AT])
            + struct.pack(">I", self.counter)
            + bytes(16)
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + self._cose()
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(
                        self._client_data("webauthn.create", challenge, origin)
                    ),
                    "attestationObject": b64url(attestation),
                    "transports": ["internal"],
                },
                "clientExtensionResults": {},
            }
        )

    def assert_(self, challenge: bytes, origin: str, *, rp_id: str | None = None) -> str:
        """The ``navigator.credentials.get`` answer (the counter goes up by one)."""
        self.counter += 1
        auth_data = (
            hashlib.sha256((rp_id or self.rp_id).encode()).digest()
            + bytes([_UP | _UV])
            + struct.pack(">I", self.counter)
        )
        client_data = self._client_data("webauthn.get", challenge, origin)
        signature = self.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature),
                    "userHandle": b64url(self.user_handle) if self.user_handle else None,
                },
                "clientExtensionResults": {},
            }
        )
