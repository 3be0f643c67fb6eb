"""``authmesh keys list`` and ``authmesh keys rotate``: the server's signing keys."""

from __future__ import annotations

import datetime as dt

import typer
from rich.console import Console
from rich.table import Table

from authmesh.cli.server_context import (
    ConfigOpt,
    DatabaseOpt,
    DataDirOpt,
    run_with_context,
    settings_from,
)
from authmesh.server import audit
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.keys import KeyInfo

__all__ = ["list_keys", "rotate_keys"]


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def list_keys(
    database_url: DatabaseOpt = None, data_dir: DataDirOpt = None, config: ConfigOpt = None
) -> None:
    """List the server's signing keys and their state (never a private part)."""

    async def action(ctx: ServerContext) -> list[KeyInfo]:
        return ctx.keys.describe()

    table = Table("kid", "alg", "state", "published", "signs from", "retires", "leaves JWKS")
    for k in run_with_context(settings_from(config, database_url, data_dir), action):
        table.add_row(
            k.kid,
            k.alg,
            k.state,
            _when(k.published_at),
            _when(k.activates_at),
            _when(k.retires_at),
            _when(k.expires_at),
        )
    Console().print(table)


def rotate_keys(
    database_url: DatabaseOpt = None, data_dir: DataDirOpt = None, config: ConfigOpt = None
) -> None:
    """Publish a new signing key now; it signs after key_publish_ahead seconds."""

    async def action(ctx: ServerContext) -> tuple[str, float]:
        key = await ctx.keys.rotate()
        async with ctx.db.transaction() as session:
            await audit.record(
                ctx, session, "key_rotate", info=RequestInfo(actor="cli"), kid=key.kid
            )
        info = next(k for k in ctx.keys.describe() if k.kid == key.kid)
        return key.kid, info.activates_at

    kid, activates = run_with_context(settings_from(config, database_url, data_dir), action)
    typer.echo(f"new key {kid} published; it signs from {_when(activates)} UTC")
