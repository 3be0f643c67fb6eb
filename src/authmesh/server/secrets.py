"""Opaque secrets: refresh tokens, client secrets, and encryption of keys at rest.

Refresh tokens and client secrets are 256-bit random values, so a single SHA-256
is a sufficient storage hash (no dictionary to attack); comparisons are
constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authmesh.errors import ConfigError

__all__ = [
    "KeyEncryptor",
    "hash_secret",
    "new_secret",
    "secret_matches",
    "successor_token",
]


def new_secret() -> str:
    """A fresh 256-bit URL-safe secret."""
    return secrets.token_urlsafe(32)


def hash_secret(value: str) -> str:
    """SHA-256 hex digest under which a high-entropy secret is stored."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def secret_matches(value: str, stored_hash: str | None) -> bool:
    """Constant-time check of a presented secret against its stored hash."""
    if stored_hash is None:
        return False
    return hmac.compare_digest(hash_secret(value), stored_hash)


def successor_token(pepper: bytes, token: str) -> str:
    """The refresh token that rotation gives for ``token``.

    Deterministic, so that two concurrent refreshes of one token inside the
    grace window both answer with the same new refresh token.
    """
    digest = hmac.digest(pepper, b"authmesh-refresh-successor:" + token.encode(), "sha256")
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class KeyEncryptor:
    """AES-256-GCM under a key derived (HKDF-SHA256) from the operator's master key.

    ``name`` says where the master key came from, in error messages.
    """

    def __init__(self, master_key: str, *, name: str = "AUTHMESH_MASTER_KEY") -> None:
        self.name = name
        if len(master_key) < 16:
            raise ConfigError(f"{name} must be at least 16 characters")
        self._aead = AESGCM(
            HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=b"authmesh signing keys"
            ).derive(master_key.encode())
        )

    def encrypt(self, document: dict[str, Any], *, aad: str) -> str:
        """Encrypt a JSON document, bound to ``aad`` (the key id)."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, json.dumps(document).encode(), aad.encode())
        return base64.b64encode(nonce + sealed).decode()

    def decrypt(self, token: str, *, aad: str) -> dict[str, Any]:
        """Decrypt what :meth:`encrypt` produced.

        Raises:
            ConfigError: wrong master key or tampered ciphertext.
        """
        raw = base64.b64decode(token)
        try:
            plain = self._aead.decrypt(raw[:12], raw[12:], aad.encode())
        except InvalidTag:
            raise ConfigError(
                f"cannot decrypt signing key {aad}: {self.name} is wrong or the "
                "stored key was altered"
            ) from None
        result: dict[str, Any] = json.loads(plain)
        return result
