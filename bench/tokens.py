"""The benchmark's token: a realistic RFC 9068 access token, one per algorithm.

The payload is what the authmesh server issues for a user login (see
``docs/architecture.md``), about 380 bytes of JSON.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from authmesh.jose import Key, KeySet, VerifyPolicy, sign_jwt

__all__ = ["ALGORITHMS", "AUDIENCE", "ISSUER", "REQUIRED", "BenchToken", "access_claims", "make"]

ALGORITHMS = ("EdDSA", "ES256", "RS256", "HS256")
ISSUER = "https://auth.example-company.com"
AUDIENCE = "orders"
#: Claims every verifier is told to require (RFC 9068 §2.2).
REQUIRED = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")


def access_claims(
    now: float | None = None, *, jti: str = "7d1c2a9e-4b6f-4e0a-9c3d-5f8e2b1a6c40"
) -> dict[str, Any]:
    """Claims of a user's access token, valid for ten minutes from ``now``."""
    iat = int(time.time() if now is None else now)
    return {
        "iss": ISSUER,
        "sub": "3f9a7c2e-8d41-4b6a-a0e5-92c1d7f4b803",
        "aud": [AUDIENCE, "catalog"],
        "exp": iat + 600,
        "iat": iat,
        "nbf": iat,
        "auth_time": iat - 30,
        "jti": jti,
        "client_id": "web-frontend",
        "scope": "openid profile orders:read orders:write",
        "roles": ["customer", "beta"],
        "sid": "c5e8b0d2-1f7a-4c93-8e26-a4b9d3f07e15",
    }


@dataclass(frozen=True, slots=True)
class BenchToken:
    """One algorithm's signing key, its public (verifying) key and a token."""

    alg: str
    key: Key
    verify_key: Key
    token: str

    @property
    def payload_bytes(self) -> int:
        """Length of the payload's JSON."""
        return len(json.dumps(access_claims(), separators=(",", ":")))

    def keyset(self) -> KeySet:
        """The verifier's trusted keys."""
        return KeySet([self.verify_key])

    def policy(self) -> VerifyPolicy:
        """The resource server's policy for this token."""
        return VerifyPolicy.for_access_tokens(issuer=ISSUER, audience=AUDIENCE)

    def sign(self, claims: dict[str, Any]) -> str:
        """Another token with the same key."""
        return sign_jwt(claims, self.key, typ="at+jwt")


def make(alg: str) -> BenchToken:
    """A fresh key for ``alg`` and a token signed with it."""
    key = Key.generate(alg)
    verify_key = key if key.is_symmetric else key.public()
    return BenchToken(alg, key, verify_key, sign_jwt(access_claims(), key, typ="at+jwt"))
