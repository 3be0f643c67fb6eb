"""Errors of the sign-in pages' forms."""

from __future__ import annotations

from authmesh.errors import AuthmeshError

__all__ = ["InvalidForm"]


class InvalidForm(AuthmeshError):
    """A form that this server did not make for this browser, or that is too old."""
