"""Storage of the auth server: SQLAlchemy models, repositories, Alembic migrations.

The same code runs on the embedded SQLite default and on PostgreSQL.
"""

from __future__ import annotations

from authmesh.store.db import Database, default_sqlite_url, normalize_url

__all__ = ["Database", "default_sqlite_url", "normalize_url"]
