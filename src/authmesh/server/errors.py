"""OAuth 2.0 and bearer errors of the auth server, and their one mapping to HTTP.

RFC 6749 §5.2 for the token endpoint (and RFC 7009/7662, which reuse it),
RFC 6750 §3 for endpoints that take a bearer token.
"""

from __future__ import annotations

from typing import ClassVar

from authmesh.errors import AuthmeshError

__all__ = [
    "AccessDenied",
    "BearerError",
    "InsufficientScope",
    "InvalidBearer",
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "InvalidTarget",
    "NotFound",
    "OAuthError",
    "RateLimited",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "UnsupportedTokenType",
    "header_quote",
]


def header_quote(value: str) -> str:
    """Quote a value for a ``WWW-Authenticate`` auth-param (RFC 7235 quoted-string)."""
    clean = "".join(ch for ch in value if 0x20 <= ord(ch) < 0x7F)
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


class OAuthError(AuthmeshError):
    """An RFC 6749 §5.2 error: a JSON body ``{"error", "error_description"}``."""

    error: ClassVar[str] = "invalid_request"
    status: ClassVar[int] = 400

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

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Basic realm="authmesh"'}


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


class NotFound(OAuthError):
    """An admin API object does not exist."""

    error = "not_found"
    status = 404


class AccessDenied(OAuthError):
    """The request is understood but not allowed (e.g. wrong current password)."""

    error = "access_denied"
    status = 403


class BearerError(OAuthError):
    """An RFC 6750 §3 error on an endpoint that takes a bearer token."""

    error = "invalid_token"
    status = 401

    def headers(self) -> dict[str, str]:
        params = f'Bearer realm="authmesh", error="{self.error}"'
        params += f", error_description={header_quote(self.description)}"
        return {"WWW-Authenticate": params}


class InvalidBearer(BearerError):
    """Missing, malformed, expired or revoked bearer token."""

    error = "invalid_token"

    def __init__(self, description: str, *, missing: bool = False) -> None:
        super().__init__(description)
        self.missing = missing

    def headers(self) -> dict[str, str]:
        if self.missing:  # RFC 6750 §3.1: no error code when no credentials were sent
            return {"WWW-Authenticate": 'Bearer realm="authmesh"'}
        return super().headers()


class InsufficientScope(BearerError):
    """The token lacks a role or scope the endpoint requires."""

    error = "insufficient_scope"
    status = 403
