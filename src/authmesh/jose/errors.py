"""Why a token is rejected: one class per reason, each with a stable code.

Tree::

    AuthmeshError
    └── TokenRejected                 reason="invalid_token"
        ├── MalformedToken            "malformed"        (bad base64url, JSON or shape)
        ├── TokenTooLarge             "too_large"
        ├── AlgNotAllowed             "alg_not_allowed"  (none, unknown, or not the key's alg)
        ├── ForbiddenHeader           "forbidden_header" (jku, x5u, jwk, x5c)
        ├── UnsupportedCritical       "unsupported_crit"
        ├── UnknownKid                "unknown_kid"
        ├── BadSignature              "bad_signature"
        ├── WrongType                 "wrong_type"
        ├── WrongIssuer               "wrong_issuer"
        ├── WrongAudience             "wrong_audience"
        ├── MissingClaim              "missing_claim"
        ├── InvalidClaim              "invalid_claim"
        ├── TokenExpired              "expired"
        ├── TokenNotYetValid          "not_yet_valid"
        ├── IssuedInFuture            "issued_in_future"
        ├── TokenRevoked              "revoked"
        └── VerifierUnavailable       "verifier_unavailable" (revocation feed stale, fail closed)

Every message is safe to show the client that sent the token: it names the
rule that failed, never a key, a secret or whether a user exists.
"""

from __future__ import annotations

from typing import ClassVar

from authmesh.errors import AuthmeshError

__all__ = [
    "REASONS",
    "AlgNotAllowed",
    "BadSignature",
    "ForbiddenHeader",
    "InvalidClaim",
    "IssuedInFuture",
    "MalformedToken",
    "MissingClaim",
    "TokenExpired",
    "TokenNotYetValid",
    "TokenRejected",
    "TokenRevoked",
    "TokenTooLarge",
    "UnknownKid",
    "UnsupportedCritical",
    "VerifierUnavailable",
    "WrongAudience",
    "WrongIssuer",
    "WrongType",
]


class TokenRejected(AuthmeshError):
    """The token must not be accepted (RFC 6750: 401, ``error="invalid_token"``)."""

    reason: ClassVar[str] = "invalid_token"
    default_message: ClassVar[str] = "the token is invalid"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, message={self.message!r})"


class MalformedToken(TokenRejected):
    """Not a compact JWS of three strict base64url parts with JSON objects."""

    reason = "malformed"
    default_message = "the token is malformed"


class TokenTooLarge(TokenRejected):
    """Longer than the configured limit: refused before any parsing."""

    reason = "too_large"
    default_message = "the token is too large"


class AlgNotAllowed(TokenRejected):
    """``alg`` is ``none``, unknown, not allowed here, or not the one bound to the key."""

    reason = "alg_not_allowed"
    default_message = "the token's algorithm is not allowed"


class ForbiddenHeader(TokenRejected):
    """The header names a key by URL or embeds one (``jku``, ``x5u``, ``jwk``, ``x5c``)."""

    reason = "forbidden_header"
    default_message = "the token header carries a forbidden parameter"


class UnsupportedCritical(TokenRejected):
    """The header lists ``crit`` extensions this verifier does not understand (RFC 7515 §4.1.11)."""

    reason = "unsupported_crit"
    default_message = "the token requires unsupported critical extensions"


class UnknownKid(TokenRejected):
    """No key in the trusted key set has the token's ``kid``."""

    reason = "unknown_kid"
    default_message = "the token's key id is not known"


class BadSignature(TokenRejected):
    """The signature does not verify with the key the token names."""

    reason = "bad_signature"
    default_message = "the token signature is invalid"


class WrongType(TokenRejected):
    """``typ`` is not the expected media type (RFC 8725 §3.11, RFC 9068 §2.1)."""

    reason = "wrong_type"
    default_message = "the token type is not accepted"


class WrongIssuer(TokenRejected):
    """``iss`` is not the trusted issuer."""

    reason = "wrong_issuer"
    default_message = "the token was not issued by the trusted issuer"


class WrongAudience(TokenRejected):
    """``aud`` does not name this service."""

    reason = "wrong_audience"
    default_message = "the token is not meant for this audience"


class MissingClaim(TokenRejected):
    """A required claim is absent."""

    reason = "missing_claim"
    default_message = "the token lacks a required claim"


class InvalidClaim(TokenRejected):
    """A claim has the wrong JSON type or an impossible value."""

    reason = "invalid_claim"
    default_message = "the token has an invalid claim"


class TokenExpired(TokenRejected):
    """``exp`` is in the past, beyond the leeway."""

    reason = "expired"
    default_message = "the token has expired"


class TokenNotYetValid(TokenRejected):
    """``nbf`` is in the future, beyond the leeway."""

    reason = "not_yet_valid"
    default_message = "the token is not valid yet"


class IssuedInFuture(TokenRejected):
    """``iat`` is in the future, beyond the leeway."""

    reason = "issued_in_future"
    default_message = "the token was issued in the future"


class TokenRevoked(TokenRejected):
    """A revocation event covers the token (blocked user, logout, password change…)."""

    reason = "revoked"
    default_message = "the token has been revoked"


class VerifierUnavailable(TokenRejected):
    """The verifier cannot vouch for revocation state (feed stale) and fails closed."""

    reason = "verifier_unavailable"
    default_message = "the revocation state is stale; try again shortly"


REASONS: frozenset[str] = frozenset(
    cls.reason
    for cls in (
        TokenRejected,
        MalformedToken,
        TokenTooLarge,
        AlgNotAllowed,
        ForbiddenHeader,
        UnsupportedCritical,
        UnknownKid,
        BadSignature,
        WrongType,
        WrongIssuer,
        WrongAudience,
        MissingClaim,
        InvalidClaim,
        TokenExpired,
        TokenNotYetValid,
        IssuedInFuture,
        TokenRevoked,
        VerifierUnavailable,
    )
)
