"""``authmesh doctor``: one line per check (OK, WARN or FAIL); exit 1 on any FAIL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from authmesh.cli.errors import EXIT_INVALID
from authmesh.cli.server_context import ConfigOpt, DatabaseOpt, DataDirOpt, settings_from

__all__ = ["doctor"]


def doctor(
    host: Annotated[str | None, typer.Option(help="Interface serve listens on")] = None,
    port: Annotated[int | None, typer.Option(help="Port serve listens on")] = None,
    issuer: Annotated[str | None, typer.Option(help="Public base URL")] = None,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate for HTTPS")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key for HTTPS")] = None,
) -> None:
    """Check a server's set-up with the settings serve would use: key encryption, file
    modes, TLS, issuer URL, database, Redis and clock. Changes nothing."""
    from authmesh.server.doctor import Status, diagnose

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
    findings = asyncio.run(diagnose(settings))
    width = max(len(f.topic) for f in findings)
    for finding in findings:
        typer.echo(finding.line(width))
    if any(f.status is Status.FAIL for f in findings):
        raise typer.Exit(EXIT_INVALID)
