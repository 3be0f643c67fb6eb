"""Checks of file modes: the data folder, the SQLite files, the master key, the TLS key."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from authmesh.server.config import ServerSettings
from authmesh.server.doctor.findings import Finding, fail, ok, warn
from authmesh.server.master_key import MASTER_KEY_FILE
from authmesh.store.private_files import file_mode

__all__ = ["check_file_modes", "sqlite_path"]

FILES = "file modes"
#: Group and others: any of these bits lets another user in.
_OPEN_BITS = 0o077


def sqlite_path(settings: ServerSettings) -> Path | None:
    """The SQLite database file, or ``None`` for PostgreSQL (or in memory)."""
    url = make_url(settings.db_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def _check(path: Path, wanted: int, secret: str | None) -> Finding | None:
    """``secret`` names what another user could read in the file (``None``: nothing)."""
    mode = file_mode(path)
    if mode is None:
        return None
    if mode & _OPEN_BITS == 0:
        return ok(FILES, f"{path} is {mode:04o}")
    fix = f"chmod {wanted:o} {path}"
    if secret is not None:
        return fail(FILES, f"{path} is {mode:04o}: other users can read {secret}; {fix}")
    return warn(FILES, f"{path} is {mode:04o}: other users can look inside; {fix}")


def check_file_modes(settings: ServerSettings) -> list[Finding]:
    """One finding per file that exists; a file holding secrets open to others is a FAIL."""
    in_db = "password hashes and the server's secrets"
    candidates: list[tuple[Path, int, str | None]] = [(settings.data_dir, 0o700, None)]
    db_file = sqlite_path(settings)
    if db_file is not None:
        candidates.append((db_file, 0o600, in_db))
        for suffix in ("-wal", "-shm"):
            candidates.append((db_file.with_name(db_file.name + suffix), 0o600, in_db))
    candidates.append((settings.data_dir / MASTER_KEY_FILE, 0o600, "the master key"))
    if settings.tls_key is not None:
        candidates.append((settings.tls_key, 0o600, "the TLS private key"))
    found = [f for path, mode, secret in candidates if (f := _check(path, mode, secret))]
    return found or [ok(FILES, f"nothing written yet in {settings.data_dir}")]
