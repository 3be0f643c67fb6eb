"""``authmesh serve`` and ``authmesh db upgrade``."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from authmesh.cli.server_context import (
    ConfigOpt,
    DatabaseOpt,
    DataDirOpt,
    run_with_context,
    settings_from,
)

__all__ = ["db_app", "serve"]

#: uvicorn's exit status when the server could not start (uvicorn.main.STARTUP_FAILURE).
_STARTUP_FAILURE = 3

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on [127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [8000]")] = None,
    issuer: Annotated[
        str | None, typer.Option(help="Public base URL (defaults to http://host:port)")
    ] = None,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate for HTTPS")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key for HTTPS")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Start the auth server (SQLite in ./data unless told otherwise)."""
    from authmesh.server.app import create_app
    from authmesh.server.serving import AuthServer, uvicorn_config

    settings = settings_from(
        config,
        database_url,
        data_dir,
        host=host,
        port=port,
        issuer=issuer,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    app = create_app(settings)
    typer.echo(f"authmesh auth server: {settings.issuer_url} (database {_safe(settings.db_url)})")
    # Read timeouts, body and header bounds, and draining feed streams on shutdown.
    server = AuthServer(uvicorn_config(app, settings, log_level=log_level))
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run does
        server.run()
    if not server.started:
        raise SystemExit(_STARTUP_FAILURE)


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@db_app.command("upgrade")
def upgrade(
    database_url: DatabaseOpt = None, data_dir: DataDirOpt = None, config: ConfigOpt = None
) -> None:
    """Apply the database migrations (the server also does this on start)."""

    async def noop(_ctx: object) -> None:
        return None

    settings = settings_from(config, database_url, data_dir)
    run_with_context(settings, noop)
    typer.echo(f"database is up to date: {_safe(settings.db_url)}")
