"""``authmesh serve`` and ``authmesh db upgrade`` (``db prune`` is in its own module)."""

from __future__ import annotations

import contextlib
import errno
import socket
from pathlib import Path
from typing import Annotated

import typer

from authmesh.cli.prune import prune
from authmesh.cli.server_context import (
    ConfigOpt,
    DatabaseOpt,
    DataDirOpt,
    run_with_context,
    safe_url,
    settings_from,
)
from authmesh.errors import ConfigError
from authmesh.server.config import ServerSettings

__all__ = ["db_app", "serve"]

#: uvicorn's exit status when the server could not start (uvicorn.main.STARTUP_FAILURE).
_STARTUP_FAILURE = 3

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
db_app.command("prune")(prune)


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
    log_format: Annotated[
        str | None,
        typer.Option(help="Log lines as timestamped text or JSON objects [text]"),
    ] = None,
    otel: Annotated[
        bool | None,
        typer.Option(
            "--otel/--no-otel",
            help="OpenTelemetry traces (authmesh[otel]; exporter from OTEL_* variables)",
            show_default=False,
        ),
    ] = None,
    insecure_plaintext_keys: Annotated[
        bool | None,
        typer.Option(
            "--insecure-plaintext-keys",
            help="Without AUTHMESH_MASTER_KEY, store private signing keys unencrypted "
            "instead of keeping a master key in the data folder",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start the auth server (SQLite in ./data unless told otherwise)."""
    from authmesh.server.app import create_app
    from authmesh.server.config import check_issuer_for_host
    from authmesh.server.logs import logging_config
    from authmesh.server.serving import AuthServer, uvicorn_config
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
        log_format=log_format,
        otel=otel,
        insecure_plaintext_keys=insecure_plaintext_keys,
    )
    check_issuer_for_host(settings)
    check_workers(settings)
    _warn_about_open_files(settings)
    if settings.otel:
        from authmesh.server.tracing import configure_tracing

        # Checks the extra before anything starts; each worker sets up its own.
        configure_tracing()
    # Bound before anything starts, so a taken port is one line, not a migrated database
    # and a half-started server.
    listener = _listen(settings.host, settings.port)
    # Open (or create) and migrate the database first: a database that is down or
    # unusable is then one line on stderr, not a traceback from the ASGI lifespan.
    try:
        run_with_context(settings, _nothing, create=True)
    except BaseException:
        listener.close()
        raise
    if settings.workers > 1:
        _serve_workers(settings, log_level, listener)
        return
    app = create_app(settings)
    where = safe_url(settings.db_url)
    typer.echo(f"authmesh auth server: {settings.issuer_url} (database {where})")
    # Read timeouts, body and header bounds, and feed streams drained on shutdown.
    server = AuthServer(
        uvicorn_config(
            app,
            settings,
            log_level=log_level,
            log_config=logging_config(settings.log_format, log_level),
        )
    )
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run does
        server.run(sockets=[listener])
    if not server.started:
        raise SystemExit(_STARTUP_FAILURE)


def _warn_about_open_files(settings: ServerSettings) -> None:
    """Say at start what ``authmesh doctor`` would: files other users can read."""
    from authmesh.server.doctor.files import check_file_modes
    from authmesh.server.doctor.findings import Status

    for finding in check_file_modes(settings):
        if finding.status is not Status.OK:
            typer.echo(f"authmesh: warning: {finding.message}", err=True)


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

    from authmesh.server.logs import logging_config
    from authmesh.server.serving import header_parser_bound
    from authmesh.server.workers import APP_FACTORY, HTTP_PROTOCOL, worker_environment

    # The database was migrated and its first signing key made once, in this process,
    # rather than racing in N workers. uvicorn binds the port again for its workers (it
    # takes a descriptor only as a Unix socket); the check above named a taken port.
    listener.close()
    os.environ.update(worker_environment(settings))
    typer.echo(
        f"authmesh auth server: {settings.issuer_url} (database {safe_url(settings.db_url)}, "
        f"{settings.workers} workers)"
    )
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        log_config=logging_config(settings.log_format, log_level),
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        proxy_headers=settings.trusted_proxies is not None,
        forwarded_allow_ips=settings.trusted_proxies,
        # Read timeouts and header bound, as in one process (by name: workers import it).
        http=HTTP_PROTOCOL,
        h11_max_incomplete_event_size=header_parser_bound(settings),
        # Feed streams never end by themselves; subscribers reconnect to another worker.
        timeout_graceful_shutdown=3,
    )


async def _nothing(_ctx: object) -> None:
    return None


@db_app.command("upgrade")
def upgrade(
    database_url: DatabaseOpt = None, data_dir: DataDirOpt = None, config: ConfigOpt = None
) -> None:
    """Apply the database migrations (the server also does this on start)."""

    settings = settings_from(config, database_url, data_dir)
    run_with_context(settings, _nothing, create=True)
    typer.echo(f"database is up to date: {safe_url(settings.db_url)}")
