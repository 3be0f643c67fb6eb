"""Token core: keys, JWKS, signing and verification of JWTs (RFC 7515-7519, 8725, 9068).

Typical use::

    key = Key.generate("EdDSA")
    token = sign_jwt({"iss": ..., "sub": ..., "exp": ...}, key, typ="at+jwt")
    policy = VerifyPolicy.for_access_tokens(issuer=..., audience="orders")
    verified = verify_jwt(token, KeySet([key.public()]), policy)
"""

from __future__ import annotations

from authmesh.jose.errors import (
    REASONS,
    AlgNotAllowed,
    BadSignature,
    ForbiddenHeader,
    InvalidClaim,
    IssuedInFuture,
    MalformedToken,
    MissingClaim,
    TokenExpired,
    TokenNotYetValid,
    TokenRejected,
    TokenRevoked,
    TokenTooLarge,
    UnknownKid,
    UnsupportedCritical,
    VerifierUnavailable,
    WrongAudience,
    WrongIssuer,
    WrongType,
)
from authmesh.jose.jws import (
    FORBIDDEN_HEADERS,
    VerifiedJWS,
    VerifiedToken,
    sign_jwt,
    verify_jws,
    verify_jwt,
)
from authmesh.jose.keys import ASYMMETRIC_ALGORITHMS, SUPPORTED_ALGORITHMS, Key
from authmesh.jose.keyset import KeyResolver, KeySet
from authmesh.jose.policy import ACCESS_TOKEN_CLAIMS, ACCESS_TOKEN_TYPES, Clock, VerifyPolicy

__all__ = [
    "ACCESS_TOKEN_CLAIMS",
    "ACCESS_TOKEN_TYPES",
    "ASYMMETRIC_ALGORITHMS",
    "FORBIDDEN_HEADERS",
    "REASONS",
    "SUPPORTED_ALGORITHMS",
    "AlgNotAllowed",
    "BadSignature",
    "Clock",
    "ForbiddenHeader",
    "InvalidClaim",
    "IssuedInFuture",
    "Key",
    "KeyResolver",
    "KeySet",
    "MalformedToken",
    "MissingClaim",
    "TokenExpired",
    "TokenNotYetValid",
    "TokenRejected",
    "TokenRevoked",
    "TokenTooLarge",
    "UnknownKid",
    "UnsupportedCritical",
    "VerifiedJWS",
    "VerifiedToken",
    "VerifierUnavailable",
    "VerifyPolicy",
    "WrongAudience",
    "WrongIssuer",
    "WrongType",
    "sign_jwt",
    "verify_jws",
    "verify_jwt",
]
