"""The root of authmesh's errors, and the errors the server and the SDK share.

Tree (every error class authmesh raises on purpose, by package)::

    AuthmeshError
    ├── TokenRejected                 authmesh.jose: 401 error="invalid_token", safe to show
    │   ├── MalformedToken            the client; one class per reason (``reason`` code)
    │   ├── TokenTooLarge
    │   ├── AlgNotAllowed
    │   ├── ForbiddenHeader
    │   ├── UnsupportedCritical
    │   ├── UnknownKid
    │   ├── BadSignature
    │   ├── WrongType
    │   ├── WrongIssuer
    │   ├── WrongAudience
    │   ├── MissingClaim
    │   ├── InvalidClaim
    │   ├── TokenExpired
    │   ├── TokenNotYetValid
    │   ├── IssuedInFuture
    │   ├── TokenRevoked
    │   └── VerifierUnavailable       the revocation feed is stale: fail closed (503)
    ├── BearerError                   here: the other outcomes of RFC 6750 §3 (server and SDK)
    │   ├── MissingToken              401, no error code (§3.1: no credentials sent)
    │   ├── InvalidRequest            401 error="invalid_request" (malformed Authorization)
    │   ├── InsufficientScope         403 error="insufficient_scope" (role or scope missing)
    │   ├── InvalidDpopProof          401 DPoP error="invalid_dpop_proof" (RFC 9449 §7.1)
    │   └── DpopRequired              401 DPoP error="invalid_token": a bound token as bearer
    ├── OAuthError                    authmesh.server: RFC 6749 §5.2 JSON errors
    │   ├── InvalidRequest            400 (a form parameter missing, repeated or malformed)
    │   ├── InvalidClient             401 with a Basic challenge
    │   ├── InvalidGrant
    │   ├── UnauthorizedClient
    │   ├── UnsupportedGrantType
    │   ├── InvalidScope
    │   ├── InvalidTarget
    │   ├── InvalidDpopProofError     400 invalid_dpop_proof (RFC 9449 §5)
    │   ├── UnsupportedTokenType
    │   ├── AccessDenied              403
    │   ├── NotFound                  404 (admin API)
    │   ├── RateLimited               429 slow_down, with Retry-After
    │   │   └── StreamLimitReached    a client over its revocation-feed stream limit
    │   └── TemporarilyUnavailable    503 (the rate limiter's store is down: fail closed)
    ├── WeakPassword                  authmesh.server: a new password breaks the policy
    ├── UntrustedRedirect             authmesh.server.oidc: an error page, never a redirect
    ├── AuthorizationError            authmesh.server.oidc: told to the client by redirect
    ├── LogoutRequestError            authmesh.server.oidc: a logout that cannot be honoured
    ├── InvalidForm                   authmesh.server.web: a forged, foreign or stale form
    ├── IssuerError                   authmesh.service: talking to the auth server failed
    │   ├── DiscoveryError
    │   ├── FeedError
    │   │   └── FeedUnauthorized
    │   └── TokenRequestError
    └── OperatorError                 bad configuration, missing or unusable key: never a 401
        ├── ConfigError               here
        ├── InvalidKey                here
        ├── RateLimiterUnavailable    authmesh.server: Redis unreachable
        └── DatabaseUnavailable       authmesh.store: the database is unreachable or too slow

Each package keeps its classes in its ``errors`` module. The messages of
``TokenRejected`` and ``BearerError`` are safe to show the client that sent the token.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

__all__ = [
    "AuthmeshError",
    "BearerError",
    "ConfigError",
    "DpopRequired",
    "InsufficientScope",
    "InvalidDpopProof",
    "InvalidKey",
    "InvalidRequest",
    "MissingToken",
    "OperatorError",
]


class AuthmeshError(Exception):
    """Root of every error authmesh raises on purpose."""


class OperatorError(AuthmeshError):
    """A fault of the deployment (configuration, keys), not of the caller's token."""


class ConfigError(OperatorError):
    """A setting is missing or invalid."""


class InvalidKey(OperatorError):
    """A key cannot be loaded or is unfit for its algorithm (too short, wrong type)."""


class BearerError(AuthmeshError):
    """A request cannot proceed for a reason other than a rejected token (RFC 6750 §3)."""

    status: ClassVar[int] = 401
    #: The RFC 6750 §3.1 error code; ``None`` when the challenge must carry none.
    error: ClassVar[str | None] = None
    #: The authentication scheme of the challenge (RFC 9449 adds ``DPoP``).
    scheme: ClassVar[str] = "Bearer"
    default_message: ClassVar[str] = "the request is not authorized"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(message={self.message!r})"


class MissingToken(BearerError):
    """No bearer token was sent (RFC 6750 §3.1: the challenge carries no error code)."""

    status = 401
    error = None
    default_message = "authentication required: send a bearer access token"


class InvalidRequest(BearerError):
    """The Authorization header is malformed: not ``Bearer <token>``, or sent twice.

    RFC 6750 §3.1 allows 400 for ``invalid_request``; authmesh answers 401 so
    that every authentication failure is a 401 carrying a challenge.
    """

    status = 401
    error = "invalid_request"
    default_message = "the Authorization header must be 'Bearer <token>'"


class InsufficientScope(BearerError):
    """The token is valid but lacks a role or scope (RFC 6750 §3.1: 403)."""

    status = 403
    error = "insufficient_scope"
    default_message = "the token does not grant access to this resource"

    def __init__(
        self,
        message: str | None = None,
        *,
        missing_roles: Iterable[str] = (),
        missing_scopes: Iterable[str] = (),
        required_scopes: Iterable[str] = (),
    ) -> None:
        self.missing_roles = frozenset(missing_roles)
        self.missing_scopes = frozenset(missing_scopes)
        self.required_scopes = frozenset(required_scopes) or self.missing_scopes
        if message is None:
            parts = []
            if self.missing_roles:
                parts.append("role " + " ".join(sorted(self.missing_roles)))
            if self.missing_scopes:
                parts.append("scope " + " ".join(sorted(self.missing_scopes)))
            if parts:
                message = "the token lacks the required " + " and ".join(parts)
        super().__init__(message)


class InvalidDpopProof(BearerError):
    """A DPoP proof is missing, malformed, badly signed, stale, replayed or for another request.

    ``invalid_dpop_proof``: 400 at the token endpoint (RFC 9449 §5), 401 with a
    ``DPoP`` challenge at a service (§7.1). The message is safe to show the client.
    """

    status = 401
    error = "invalid_dpop_proof"
    scheme = "DPoP"
    default_message = "the DPoP proof is not valid for this request"


class DpopRequired(BearerError):
    """A DPoP-bound token came as a bearer token, or an unbound one with the DPoP scheme.

    RFC 9449 §7.1: a stolen bound token must not pass as a bearer token; 401
    ``invalid_token`` with a ``DPoP`` challenge.
    """

    status = 401
    error = "invalid_token"
    scheme = "DPoP"
    default_message = "this token is bound to a DPoP key: send 'DPoP <token>' and a DPoP proof"
