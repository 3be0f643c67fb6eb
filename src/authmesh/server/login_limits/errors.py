"""Errors of the login limits: the limiter's store is down, so the server refuses for now."""

from __future__ import annotations

from authmesh.errors import OperatorError
from authmesh.server.errors import OAuthError

__all__ = ["RateLimiterUnavailable", "TemporarilyUnavailable"]


class RateLimiterUnavailable(OperatorError):
    """The limiter's backend (Redis) cannot be reached; the caller fails closed or open."""


class TemporarilyUnavailable(OAuthError):
    """The limiter's store is down: fail closed rather than allow unlimited guessing.

    503 with ``Retry-After`` (RFC 9110 §10.2.3): when the limiter tries Redis again.
    """

    error = "temporarily_unavailable"
    status = 503

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after or 5)))}
