"""Auth-server settings for tests, importable without the server's dependencies."""

from __future__ import annotations

from typing import Any

__all__ = ["FAST_ARGON2", "server_env"]

#: Cheap Argon2 so tests don't spend seconds hashing; production parameters are
#: exercised by the benchmark.
FAST_ARGON2: dict[str, int] = {
    "argon2_time_cost": 1,
    "argon2_memory_cost": 1024,
    "argon2_parallelism": 1,
}


def server_env(**settings: Any) -> dict[str, str]:
    """``AUTHMESH_*`` environment variables carrying ``ServerSettings`` values."""
    return {f"AUTHMESH_{name.upper()}": str(value) for name, value in settings.items()}
