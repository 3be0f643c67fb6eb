"""What the figures were measured on: CPU, Python, library versions, commit, date."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["LIBRARIES", "git_commit", "load_average", "machine_info", "machine_markdown"]

LIBRARIES = ("cryptography", "PyJWT", "joserfc", "Authlib", "argon2-cffi", "PyNaCl", "redis")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, or ``"unknown"``."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except (OSError, AttributeError):
        return "unknown"


def git_commit() -> str:
    """The short commit of the working tree, with ``+dirty`` when it has changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def machine_info() -> dict[str, str]:
    """Name -> value, in display order."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 0
    info = {
        "date (UTC)": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "commit": git_commit(),
        "CPU": _cpu_model(),
        "nproc": f"{usable} usable of {os.cpu_count()}",
        "OS": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
    }
    for name in LIBRARIES:
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = "not installed"
    try:
        from cryptography.hazmat.backends.openssl.backend import backend

        info["OpenSSL"] = backend.openssl_version_text()
    except Exception:  # informational only
        pass
    return info


def machine_markdown(extra: dict[str, str] | None = None) -> str:
    """The machine (and ``extra`` rows) as a two-column Markdown table."""
    rows = "\n".join(f"| {k} | {v} |" for k, v in {**machine_info(), **(extra or {})}.items())
    return f"| | |\n| --- | --- |\n{rows}\n"
