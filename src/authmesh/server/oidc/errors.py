"""Errors of the authorization and logout endpoints."""

from __future__ import annotations

from authmesh.errors import AuthmeshError

__all__ = ["AuthorizationError", "LogoutRequestError", "UntrustedRedirect"]


class UntrustedRedirect(AuthmeshError):
    """The request names no client or redirect URI to trust: an error page, never a redirect.

    Sending the browser to an unverified ``redirect_uri`` would make the server
    an open redirector (RFC 6749 §4.1.2.1, RFC 9700 §4.11).
    """

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class AuthorizationError(AuthmeshError):
    """An error the client learns through its redirect URI (RFC 6749 §4.1.2.1)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


class LogoutRequestError(AuthmeshError):
    """A logout request that cannot be honoured as asked (shown on an error page)."""
