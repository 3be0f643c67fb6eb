"""Starlette / ASGI: the one place authentication failures become HTTP responses.

Code deeper in the app raises :class:`AuthHTTPException` (a Starlette
``HTTPException``, so it still becomes a 401/403 with its challenge if the
handlers were not installed); :func:`error_response` writes the RFC 6750 §3 answer.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from authmesh.jose.errors import TokenRejected
from authmesh.service.bearer import challenge_for
from authmesh.service.errors import BearerError

__all__ = ["AuthHTTPException", "error_response", "install_error_handlers"]


class AuthHTTPException(HTTPException):
    """An authentication/authorization failure on its way to :func:`error_response`."""

    def __init__(self, error: TokenRejected | BearerError, realm: str) -> None:
        self.error = error
        self.realm = realm
        self.challenge = challenge_for(error, realm)
        super().__init__(
            status_code=self.challenge.status,
            detail=self.challenge.description,
            headers={k: v for k, v in self.challenge.headers if k != "Content-Type"},
        )


def error_response(error: TokenRejected | BearerError | AuthHTTPException, realm: str) -> Response:
    """The RFC 6750 §3 response for a failure: status, challenge and JSON body."""
    challenge = (
        error.challenge if isinstance(error, AuthHTTPException) else (challenge_for(error, realm))
    )
    return Response(
        challenge.body,
        status_code=challenge.status,
        headers=dict(challenge.headers),
        media_type="application/json",
    )


def install_error_handlers(app: Any, realm: str) -> None:
    """Make ``app`` answer our exceptions with :func:`error_response` (Starlette or FastAPI)."""

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TokenRejected | BearerError | AuthHTTPException)
        return error_response(exc, realm)

    for exc_type in (AuthHTTPException, TokenRejected, BearerError):
        app.add_exception_handler(exc_type, handler)
