"""Running the ``authmesh`` command in this process, on a test database."""

from __future__ import annotations

import os

from click.testing import Result
from typer.testing import CliRunner

from authmesh.cli.main import app as cli_app
from authmesh.testing.databases import DbTarget
from authmesh.testing.server_settings import FAST_ARGON2
from support.harness import DEFAULTS

__all__ = ["cli", "cli_env"]


def cli_env(db: DbTarget, **extra: str) -> dict[str, str]:
    """Settings of a command on the test database, as ``AUTHMESH_*`` variables."""
    env = {"AUTHMESH_DATA_DIR": str(db.data_dir), "AUTHMESH_DATABASE_URL": db.url, "COLUMNS": "250"}
    if db.schema:
        env["AUTHMESH_DATABASE_SCHEMA"] = db.schema
    for name, value in {**FAST_ARGON2, **DEFAULTS}.items():
        env[f"AUTHMESH_{name.upper()}"] = str(value)
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str, code: int = 0) -> Result:
    """The root command with exactly these ``AUTHMESH_*`` variables; asserts the exit code."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("AUTHMESH_")}
    result = CliRunner().invoke(cli_app, list(args), env={**unset, **env})
    assert result.exit_code == code, (
        f"{args}: {result.exit_code}\n{result.stdout}\n{result.stderr}\n{result.exception!r}"
    )
    return result
