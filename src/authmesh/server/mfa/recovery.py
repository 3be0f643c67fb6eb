"""Recovery codes: ten single-use codes shown once, stored as keyed hashes.

Each code carries 50 random bits (ten base32 characters), so a keyed SHA-256
is enough to store it: no slow hash is needed against guessing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["RECOVERY_CODES", "new_recovery_codes", "normalize", "recovery_code_hash"]

RECOVERY_CODES = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud, typed by hand


def new_recovery_codes() -> list[str]:
    """Ten fresh codes, ``xxxxx-xxxxx``."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalize(code: str) -> str:
    """A typed code without spaces, dashes or case."""
    return "".join(ch for ch in code.lower() if ch.isalnum())[:40]


def recovery_code_hash(pepper: bytes, code: str) -> str:
    """The stored form of a code: HMAC-SHA-256 keyed by the server's pepper."""
    return hmac.new(pepper, b"recovery:" + normalize(code).encode(), hashlib.sha256).hexdigest()
