"""Errors of the auth server: RFC 6749 §5.2 OAuth errors, and a password that breaks the policy.

The token endpoint (and RFC 7009/7662, which reuse it), the admin and account
APIs and the feed answer with an :class:`OAuthError`; ``authmesh.server.app``
turns each into its JSON body and status in one place. Endpoints that take a
bearer token answer RFC 6750 §3 failures with :class:`~authmesh.errors.BearerError`
and the token rejections of :mod:`authmesh.jose`, shared with the SDK.
"""

from __future__ import annotations

from typing import ClassVar

from authmesh.errors import AuthmeshError

__all__ = [
    "AccessDenied",
    "InvalidClient",
    "InvalidDpopProofError",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "InvalidTarget",
    "NotFound",
    "OAuthError",
    "RateLimited",
    "StreamLimitReached",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "UnsupportedTokenType",
    "WeakPassword",
]


class OAuthError(AuthmeshError):
    """An RFC 6749 §5.2 error: a JSON body ``{"error", "error_description"}``."""

    error: ClassVar[str] = "invalid_request"
    status: ClassVar[int] = 400
    #: Whether the answer asks for HTTP Basic client credentials, in the server's realm.
    asks_for_basic: ClassVar[bool] = False

    def __init__(self, description: str, *, retry_after: float | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """Extra response headers."""
        return {}


class InvalidRequest(OAuthError):
    """Missing, repeated or malformed parameter."""

    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed (§5.2: 401 with ``WWW-Authenticate``)."""

    error = "invalid_client"
    status = 401
    asks_for_basic = True


class InvalidGrant(OAuthError):
    """The credentials or refresh token are invalid, expired or revoked."""

    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    """The client may not use this grant type."""

    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    """The grant type is not supported."""

    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    """The requested scope is invalid, unknown, or exceeds what is granted."""

    error = "invalid_scope"


class InvalidDpopProofError(OAuthError):
    """The token request's DPoP proof is missing, invalid or replayed (RFC 9449 §5)."""

    error = "invalid_dpop_proof"


class InvalidTarget(OAuthError):
    """The requested audience/resource is not allowed (RFC 8707 §2)."""

    error = "invalid_target"


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1: revocation of this token type is not supported."""

    error = "unsupported_token_type"


class RateLimited(OAuthError):
    """Too many attempts: 429 with ``Retry-After``."""

    error = "slow_down"
    status = 429

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after or 1)))}


class StreamLimitReached(RateLimited):
    """A client already holds as many revocation-feed streams as it may: 429."""


class NotFound(OAuthError):
    """An admin API object does not exist."""

    error = "not_found"
    status = 404


class AccessDenied(OAuthError):
    """The request is understood but not allowed (e.g. wrong current password)."""

    error = "access_denied"
    status = 403


class WeakPassword(AuthmeshError):
    """A new password breaks the policy; the message is safe to show its owner.

    The message names the rule, never the password itself.
    """

    reason: ClassVar[str] = "weak_password"
