"""The root of authmesh's errors.

Tree::

    AuthmeshError
    ├── TokenRejected            (authmesh.jose.errors: a 401 / 403, safe to show a client)
    │   └── … one class per reason
    └── OperatorError            (bad configuration, missing or unusable key: never a 401)
        ├── ConfigError
        └── InvalidKey
"""

from __future__ import annotations

__all__ = ["AuthmeshError", "ConfigError", "InvalidKey", "OperatorError"]


class AuthmeshError(Exception):
    """Root of every error authmesh raises on purpose."""


class OperatorError(AuthmeshError):
    """A fault of the deployment (configuration, keys), not of the caller's token."""


class ConfigError(OperatorError):
    """A setting is missing or invalid."""


class InvalidKey(OperatorError):
    """A key cannot be loaded or is unfit for its algorithm (too short, wrong type)."""
