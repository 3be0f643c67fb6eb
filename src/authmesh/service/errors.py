"""Errors of the service SDK, beside the token rejections of :mod:`authmesh.jose.errors`.

Tree::

    AuthmeshError
    ├── TokenRejected (authmesh.jose)  401 error="invalid_token"  (incl. TokenRevoked,
    │                                  VerifierUnavailable when the feed is stale)
    ├── BearerError                    the other outcomes of RFC 6750 §3
    │   ├── MissingToken               401, no error code (§3.1: no credentials sent)
    │   ├── InvalidRequest             401 error="invalid_request" (malformed Authorization)
    │   └── InsufficientScope          403 error="insufficient_scope" (role or scope missing)
    └── IssuerError                    talking to the auth server failed; never a 401 by itself
        ├── DiscoveryError             discovery or JWKS document unusable or unreachable
        ├── FeedError                  the revocation feed answered badly
        │   └── FeedUnauthorized       the feed refused our client credentials
        └── TokenRequestError          the token endpoint refused a client_credentials grant

Every ``message`` of a :class:`BearerError` is safe to show the client.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from authmesh.errors import AuthmeshError

__all__ = [
    "BearerError",
    "DiscoveryError",
    "FeedError",
    "FeedUnauthorized",
    "InsufficientScope",
    "InvalidRequest",
    "IssuerError",
    "MissingToken",
    "TokenRequestError",
]


class BearerError(AuthmeshError):
    """A request cannot proceed for a reason other than a rejected token (RFC 6750 §3)."""

    status: ClassVar[int] = 401
    #: The RFC 6750 §3.1 error code; ``None`` when the challenge must carry none.
    error: ClassVar[str | None] = None
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


class IssuerError(AuthmeshError):
    """A call to the auth server failed: unreachable, refused, or an unusable answer."""


class DiscoveryError(IssuerError):
    """The discovery document or the JWKS could not be fetched or is not usable."""


class FeedError(IssuerError):
    """The revocation feed answered with an unexpected status or content."""


class FeedUnauthorized(FeedError):
    """The feed refused this service's client credentials (401)."""


class TokenRequestError(IssuerError):
    """The token endpoint refused the grant (RFC 6749 §5.2) or could not be reached."""

    def __init__(self, message: str, *, error: str | None = None, status: int | None = None):
        self.error = error
        self.status = status
        super().__init__(message)
