"""Errors of the store: the database cannot be used now."""

from __future__ import annotations

from authmesh.errors import OperatorError

__all__ = ["DatabaseUnavailable"]


class DatabaseUnavailable(OperatorError):
    """The database cannot be reached or does not answer in time (for the CLI's one line)."""
