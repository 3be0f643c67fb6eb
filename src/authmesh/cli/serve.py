"""``authmesh serve`` and ``authmesh db upgrade``."""

from __future__ import annotations

import contextlib
import errno
import socket
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
from authmesh.errors import ConfigError
from authmesh.server.config import ServerSettings

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
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Server processes (needs PostgreSQL and Redis) [1]"),
    ] = None,
) -> None:
    """Start the auth server (SQLite in ./data unless told otherwise)."""
    import uvicorn

    from authmesh.server.app import create_app
    from authmesh.server.workers import check_workers

    settings = settings_from(
        config,
        database_url,
        data_dir,
        host=host,
        port=port,
        issuer=issuer,
        tls_cert=tls_cert,
        tls_key=tls_key,
        workers=workers,
    )
    check_workers(settings)
    # Bound before anything starts, so a taken port is one line, not a migrated database
    # and a half-started server.
    listener = _listen(settings.host, settings.port)
    if settings.workers > 1:
        _serve_workers(settings, log_level, listener)
        return
    app = create_app(settings)
    hub = app.state.context.hub

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Revocation-feed streams never end by themselves: without this a
            # graceful shutdown would wait for every subscribed service to hang up.
            hub.drain()
            await super().shutdown(sockets)

    typer.echo(f"authmesh auth server: {settings.issuer_url} (database {_safe(settings.db_url)})")
    server = Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
            ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
            proxy_headers=False,
        )
    )
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run does
        server.run(sockets=[listener])
    if not server.started:
        raise SystemExit(_STARTUP_FAILURE)


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, as uvicorn would bind it.

    Raises:
        ConfigError: the address is taken or cannot be bound.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "the port is taken" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise ConfigError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def _serve_workers(settings: ServerSettings, log_level: str, listener: socket.socket) -> None:
    """uvicorn's process manager, each worker building the app from the parent's settings."""
    import os

    import uvicorn

    from authmesh.server.workers import APP_FACTORY, worker_environment

    async def prepare(_ctx: object) -> None:
        return None

    # Migrate and create the first signing key once, here, rather than racing in N workers.
    run_with_context(settings, prepare)
    # uvicorn binds the port again for its workers (it takes a descriptor only as a Unix
    # socket); the check above has already named a taken port.
    listener.close()
    os.environ.update(worker_environment(settings))
    typer.echo(
        f"authmesh auth server: {settings.issuer_url} (database {_safe(settings.db_url)}, "
        f"{settings.workers} workers)"
    )
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        proxy_headers=False,
        # Feed streams never end by themselves; subscribers reconnect to another worker.
        timeout_graceful_shutdown=3,
    )


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
