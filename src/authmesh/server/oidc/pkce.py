"""Proof Key for Code Exchange (RFC 7636), ``S256`` only (RFC 9700 §2.1.1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

__all__ = ["check_challenge", "verifier_matches"]

# S256 challenges are the base64url SHA-256 of the verifier: always 43 characters.
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


def check_challenge(challenge: str | None, method: str | None) -> str:
    """The code challenge, else ``ValueError`` with what is wrong.

    ``plain`` is refused: it protects nothing once the authorization request
    leaks, and every client that can do PKCE can do ``S256``.
    """
    if challenge is None:
        raise ValueError("code_challenge is required (PKCE with S256)")
    if method != "S256":
        raise ValueError("code_challenge_method must be S256")
    if not _CHALLENGE.match(challenge):
        raise ValueError("code_challenge must be the base64url SHA-256 of the verifier")
    return challenge


def verifier_matches(verifier: str, challenge: str) -> bool:
    """Whether ``verifier`` hashes to ``challenge`` (compared in constant time)."""
    if not _VERIFIER.match(verifier):
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return hmac.compare_digest(computed, challenge)
