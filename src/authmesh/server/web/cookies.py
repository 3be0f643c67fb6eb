"""The browser session and CSRF cookies: HttpOnly, SameSite=Lax, ``__Host-`` under HTTPS."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

__all__ = ["CookieJar"]


@dataclass(frozen=True, slots=True)
class CookieJar:
    """Cookie names and flags for one issuer URL."""

    secure: bool

    @classmethod
    def for_issuer(cls, issuer: str) -> CookieJar:
        """``Secure`` and ``__Host-`` names when the issuer is served over HTTPS."""
        return cls(secure=issuer.startswith("https://"))

    @property
    def session_name(self) -> str:
        """Name of the cookie naming the browser sign-in."""
        return "__Host-authmesh_session" if self.secure else "authmesh_session"

    @property
    def csrf_name(self) -> str:
        """Name of the cookie the CSRF tokens are derived from."""
        return "__Host-authmesh_csrf" if self.secure else "authmesh_csrf"

    @property
    def console_name(self) -> str:
        """Name of the cookie naming the consoles' session."""
        return "__Host-authmesh_console" if self.secure else "authmesh_console"

    @property
    def console_pending_name(self) -> str:
        """Name of the cookie holding a console sign-in under way (signed, short-lived)."""
        return "__Host-authmesh_console_signin" if self.secure else "authmesh_console_signin"

    def set(self, response: Response, name: str, value: str) -> None:
        """Set a cookie for the browser session's lifetime (host-only, path ``/``)."""
        response.set_cookie(
            name, value, path="/", secure=self.secure, httponly=True, samesite="lax"
        )

    def clear(self, response: Response, name: str) -> None:
        """Remove a cookie."""
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="lax")
