"""The two storage backends every storage and server test runs on, SQLite and PostgreSQL.

A PostgreSQL test is skipped when the server is not running, and fails in CI
(see :mod:`authmesh.testing.databases`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from authmesh.testing.databases import DbTarget, database, postgres_available

__all__ = ["db_target"]


@contextmanager
def db_target(backend: str, tmp_path: Path) -> Iterator[DbTarget]:
    """A fresh database of this backend for one test."""
    if backend == "postgres" and not postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not running")
    with database(backend, tmp_path) as target:
        yield target
