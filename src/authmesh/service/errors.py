"""Errors of the service SDK, beside the token rejections of :mod:`authmesh.jose.errors`.

Tree::

    AuthmeshError
    ├── TokenRejected (authmesh.jose)  401 error="invalid_token"  (incl. TokenRevoked;
    │                                  but VerifierUnavailable, a stale feed, is a 503
    │                                  with Retry-After: the token may be fine)
    ├── BearerError                    the other outcomes of RFC 6750 §3 (from authmesh.errors,
    │                                  shared with the auth server)
    │   ├── MissingToken               401, no error code (§3.1: no credentials sent)
    │   ├── InvalidRequest             401 error="invalid_request" (malformed Authorization)
    │   ├── InsufficientScope          403 error="insufficient_scope" (role or scope missing)
    │   ├── InvalidDpopProof           401 DPoP error="invalid_dpop_proof" (RFC 9449 §7.1)
    │   └── DpopRequired               401 DPoP error="invalid_token" (a bound token as bearer)
    └── IssuerError                    talking to the auth server failed; never a 401 by itself
        ├── DiscoveryError             discovery or JWKS document unusable or unreachable
        ├── FeedError                  the revocation feed answered badly
        │   └── FeedUnauthorized       the feed refused our client credentials
        └── TokenRequestError          the token endpoint refused a client_credentials grant

Every ``message`` of a :class:`BearerError` is safe to show the client.
"""

from __future__ import annotations

from authmesh.errors import (
    AuthmeshError,
    BearerError,
    DpopRequired,
    InsufficientScope,
    InvalidDpopProof,
    InvalidRequest,
    MissingToken,
)

__all__ = [
    "BearerError",
    "DiscoveryError",
    "DpopRequired",
    "FeedError",
    "FeedUnauthorized",
    "InsufficientScope",
    "InvalidDpopProof",
    "InvalidRequest",
    "IssuerError",
    "MissingToken",
    "TokenRequestError",
]


class IssuerError(AuthmeshError):
    """A call to the auth server failed: unreachable, refused, or an unusable answer."""


class DiscoveryError(IssuerError):
    """The discovery document or the JWKS could not be fetched or is not usable."""


class FeedError(IssuerError):
    """The revocation feed answered with an unexpected status or content.

    ``status`` is the HTTP status when the issuer answered (``None`` for a bad
    body or a broken stream), ``retry_after`` the seconds its ``Retry-After`` asked for.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class FeedUnauthorized(FeedError):
    """The feed refused this service's client credentials (401)."""


class TokenRequestError(IssuerError):
    """The token endpoint refused the grant (RFC 6749 §5.2) or could not be reached."""

    def __init__(self, message: str, *, error: str | None = None, status: int | None = None):
        self.error = error
        self.status = status
        super().__init__(message)
