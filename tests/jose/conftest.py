"""Shared fixtures for the token-core tests: real keys, an attacker's keys, a token forge.

Test modules cannot import each other (``--import-mode=importlib``), so the helpers
travel as fixtures. Every forged token is built byte by byte here, the way an
attacker would, never through :func:`authmesh.jose.sign_jwt`'s safety checks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from authmesh.jose import ACCESS_TOKEN_CLAIMS, Key, KeySet, VerifyPolicy
from authmesh.jose.b64 import b64url_encode
from authmesh.testing import FakeClock

NOW = 1_700_000_000
ISSUER = "https://auth.example.com"
AUDIENCE = "orders"
ALGS = ("EdDSA", "ES256", "RS256", "HS256")

Claims = dict[str, Any]
ClaimsFactory = Callable[..., Claims]
Forge = Callable[..., str]


def encode_json(value: Any) -> bytes:
    """Compact JSON, as a signer would write it (NaN allowed: attackers write it too)."""
    return json.dumps(value, separators=(",", ":")).encode()


Signer = Key | Callable[[bytes], bytes] | None


def _signature(signing_input: bytes, key: Signer) -> bytes:
    if key is None:
        return b""
    if isinstance(key, Key):
        return key.sign(signing_input)
    return key(signing_input)


def forge_token(
    header: Mapping[str, Any] | bytes,
    payload: Mapping[str, Any] | bytes,
    key: Signer,
    *,
    signature: bytes | None = None,
) -> str:
    """A compact JWS from JSON objects or exact JSON bytes, signed by ``key``.

    ``key`` is a :class:`Key`, any ``signing_input -> signature`` function (an HMAC
    keyed with a public key, say) or ``None`` for an empty signature part;
    ``signature`` replaces the computed one.
    """
    h = header if isinstance(header, bytes) else encode_json(header)
    p = payload if isinstance(payload, bytes) else encode_json(payload)
    return forge_segments(
        b64url_encode(h).decode(), b64url_encode(p).decode(), key, signature=signature
    )


def forge_segments(
    header_b64: str, payload_b64: str, key: Signer, *, signature: bytes | None = None
) -> str:
    """A compact JWS over exact (possibly malformed) header and payload segments."""
    signing_input = f"{header_b64}.{payload_b64}".encode()
    if signature is None:
        signature = _signature(signing_input, key)
    return f"{header_b64}.{payload_b64}.{b64url_encode(signature).decode()}"


@pytest.fixture(scope="session")
def real_keys() -> dict[str, Key]:
    """The issuer's private keys, one per algorithm."""
    return {alg: Key.generate(alg) for alg in ALGS}


@pytest.fixture(scope="session")
def attacker_keys() -> dict[str, Key]:
    """Keys the attacker generated: valid, but nobody trusts them."""
    return {alg: Key.generate(alg) for alg in ALGS}


@pytest.fixture(scope="session")
def trusted(real_keys: dict[str, Key]) -> KeySet:
    """What a verifier trusts: the public halves, and the shared HS256 secret."""
    return KeySet(
        [key.public() for alg, key in real_keys.items() if alg != "HS256"] + [real_keys["HS256"]]
    )


@pytest.fixture
def policy() -> VerifyPolicy:
    """A resource server's RFC 9068 policy with the default 30 s leeway."""
    return VerifyPolicy.for_access_tokens(issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture
def clock() -> FakeClock:
    """A frozen clock at :data:`NOW`."""
    return FakeClock(NOW)


def _claims(drop: tuple[str, ...] = (), **changes: Any) -> Claims:
    claims: Claims = {
        "iss": ISSUER,
        "sub": "user-42",
        "aud": AUDIENCE,
        "exp": NOW + 300,
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "jti": "jti-1",
        "client_id": "web",
        "scope": "orders:read",
        "roles": ["customer"],
        "sid": "sid-1",
    }
    assert ACCESS_TOKEN_CLAIMS <= claims.keys()
    claims.update(changes)
    for name in drop:
        del claims[name]
    return claims


@pytest.fixture
def make_claims() -> ClaimsFactory:
    """Valid access-token claims at :data:`NOW`; ``drop=(...)`` removes, kwargs replace."""
    return _claims


@pytest.fixture
def forge() -> Forge:
    """:func:`forge_token`."""
    return forge_token


@pytest.fixture
def forge_raw() -> Forge:
    """:func:`forge_segments`."""
    return forge_segments


@pytest.fixture
def access_header() -> Callable[[Key], dict[str, Any]]:
    """The header our issuer writes for ``key``."""
    return lambda key: {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
