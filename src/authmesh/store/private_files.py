"""Files only the server's user may read: the data folder (0700), the SQLite
database (0600) and the master key (0600).

Modes are given when a file or folder is created, never loosened or changed
afterwards: an operator's own choice for an existing path stands, and
``authmesh doctor`` reports it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["create_private_file", "file_mode", "private_dir", "write_private_file"]

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create the folder ``path`` (mode 0700) if it does not exist; its parents as usual."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    return path


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists; whether this call made it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def write_private_file(path: Path, text: str) -> bool:
    """Write ``path`` (mode 0600) unless it exists; whether this call wrote it.

    The content appears all at once (a hard link from a temporary file), so a
    process that loses the race to create it never reads a half-written file.
    """
    if path.exists():
        return False
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def file_mode(path: Path) -> int | None:
    """The permission bits of ``path``, or ``None`` when it does not exist."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return None
