"""Running an operator command against the server's database, without the server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.engine import make_url

from authmesh.errors import ConfigError
from authmesh.server.config import ServerSettings, load_settings
from authmesh.server.context import ServerContext
from authmesh.store.errors import DatabaseUnavailable
from authmesh.store.outages import database_outage, describe_outage

__all__ = [
    "ConfigOpt",
    "DataDirOpt",
    "DatabaseOpt",
    "run_with_context",
    "safe_url",
    "settings_from",
]

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
    settings: ServerSettings,
    action: Callable[[ServerContext], Awaitable[T]],
    *,
    create: bool = False,
) -> T:
    """Open the database (migrating it), run ``action``, close.

    Only with ``create`` (``serve``, ``db upgrade``) may this make a database:
    otherwise a SQLite file that does not exist, or a database without
    authmesh's tables, is a one-line error, so a mistyped ``--data-dir`` never
    leaves an empty database behind.

    Raises:
        ConfigError: no database there (without ``create``), or bad settings.
        DatabaseUnavailable: the database cannot be reached or does not answer.
    """

    async def main() -> T:
        ctx = ServerContext.build(settings, create_database=create)
        try:
            if not create and not await ctx.db.has_tables():
                raise ConfigError(
                    f"the database {safe_url(settings.db_url)} has no authmesh tables: check "
                    "--database-url and the schema, or create them with 'authmesh db upgrade'"
                )
            await ctx.start()
            return await action(ctx)
        finally:
            await ctx.close()

    try:
        return asyncio.run(main())
    except Exception as exc:
        outage = database_outage(exc)
        if outage is None:
            raise
        raise DatabaseUnavailable(
            f"cannot use the database {safe_url(settings.db_url)}: {describe_outage(outage)}"
        ) from None


def safe_url(url: str) -> str:
    """A database URL without its password, to show."""
    return make_url(url).render_as_string(hide_password=True)
