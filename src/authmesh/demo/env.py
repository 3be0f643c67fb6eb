"""``demo.env``: the facts of a running demo as ``KEY=value`` lines for scripts and tests."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = ["ENV_FILE", "listen_host", "read_env", "write_env"]

ENV_FILE = "demo.env"


def listen_host(host: str) -> str:
    """The interface a demo part listens on for the host name in its URL: loopback for
    ``localhost`` (browsers resolve that name to this machine themselves), else the host."""
    return "127.0.0.1" if host.lower() == "localhost" else host


def read_env(path: Path) -> dict[str, str]:
    """Parse a ``KEY=value`` file (blank lines and ``#`` comments skipped)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


def write_env(path: Path, values: Mapping[str, str]) -> None:
    """Write the file readable by its owner only (it holds demo credentials)."""
    lines = ["# authmesh demo: written at every start; credentials are for the demo only"]
    lines += [f"{key}={value}" for key, value in values.items()]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
