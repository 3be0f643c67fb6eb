"""Running an operator command against the server's database, without the server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from authmesh.server.config import ServerSettings, load_settings
from authmesh.server.context import ServerContext

__all__ = ["ConfigOpt", "DataDirOpt", "DatabaseOpt", "run_with_context", "settings_from"]

T = TypeVar("T")

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="AUTHMESH_DATABASE_URL",
        help="sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db",
        show_envvar=True,
    ),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Folder of the embedded SQLite database", show_default=False),
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file", show_default=False)
]


def settings_from(
    config: Path | None, database_url: str | None, data_dir: Path | None, **extra: object
) -> ServerSettings:
    """Settings from a file, the environment and these options."""
    return load_settings(config, database_url=database_url, data_dir=data_dir, **extra)


def run_with_context(
    settings: ServerSettings, action: Callable[[ServerContext], Awaitable[T]]
) -> T:
    """Open the database (migrating it), run ``action``, close."""

    async def main() -> T:
        ctx = ServerContext.build(settings)
        try:
            await ctx.start()
            return await action(ctx)
        finally:
            await ctx.close()

    return asyncio.run(main())
