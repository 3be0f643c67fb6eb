"""The ``authmesh`` command: the root app is :mod:`authmesh.cli.main`."""

from __future__ import annotations

__all__: list[str] = []
