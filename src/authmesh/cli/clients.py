"""``authmesh clients``: register OAuth clients."""

from __future__ import annotations

from typing import Annotated

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
from authmesh.server import clients as client_service
from authmesh.server.client_auth import TOKEN_EXCHANGE
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.errors import NotFound

__all__ = ["clients_app"]

clients_app = typer.Typer(help="Register, list and remove OAuth clients.", no_args_is_help=True)
_CLI = RequestInfo(actor="cli")
Many = list[str] | None
#: Short names for grant types that are URNs.
GRANT_ALIASES = {"token-exchange": TOKEN_EXCHANGE}


@clients_app.command("add")
def add(
    client_id: Annotated[str, typer.Argument(help="The client id")],
    public: Annotated[
        bool, typer.Option("--public", help="A first-party app without a secret")
    ] = False,
    grant: Annotated[Many, typer.Option("--grant", "-g", help="Grant type (repeatable)")] = None,
    scope: Annotated[Many, typer.Option("--scope", "-s", help="Allowed scope (repeatable)")] = None,
    audience: Annotated[
        Many, typer.Option("--audience", "-a", help="Allowed audience (repeatable)")
    ] = None,
    role: Annotated[Many, typer.Option("--role", "-r", help="Role of its own tokens")] = None,
    redirect_uri: Annotated[
        Many, typer.Option("--redirect-uri", help="Where codes may be sent (repeatable)")
    ] = None,
    post_logout_redirect_uri: Annotated[
        Many,
        typer.Option("--post-logout-redirect-uri", help="Where logout may return (repeatable)"),
    ] = None,
    third_party: Annotated[
        bool, typer.Option("--third-party", help="Ask users for consent before it gets tokens")
    ] = False,
    serves: Annotated[
        Many,
        typer.Option(
            "--serves",
            help="Audience of the client's own API, whose users' tokens it may exchange "
            "(repeatable; needed by --grant token-exchange)",
        ),
    ] = None,
    dpop: Annotated[
        bool, typer.Option("--dpop", help="Require DPoP-bound tokens (RFC 9449)")
    ] = False,
    name: Annotated[str, typer.Option(help="Display name")] = "",
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Register a client; a confidential client's secret is printed this once."""
    # The password grant is never a default (RFC 9700 §2.4): ask for it with --grant.
    if grant:
        grants = [GRANT_ALIASES.get(g, g) for g in grant]
    elif public or redirect_uri:
        grants = ["authorization_code", "refresh_token"]
    else:
        grants = ["client_credentials"]

    async def action(ctx: ServerContext) -> client_service.NewClient:
        return await client_service.register_client(
            ctx,
            client_id=client_id,
            name=name,
            public=public,
            grant_types=grants,
            scopes=scope or [],
            audiences=audience or [],
            roles=role or [],
            redirect_uris=redirect_uri or [],
            post_logout_redirect_uris=post_logout_redirect_uri or [],
            first_party=not third_party,
            serves=serves or [],
            dpop_bound_access_tokens=dpop,
            info=_CLI,
        )

    made = run_with_context(settings_from(config, database_url, data_dir), action)
    typer.echo(f"client {made.client.client_id} registered (grants: {', '.join(grants)})")
    if made.secret is not None:
        typer.echo(f"client_secret: {made.secret}")
        typer.echo("store it now: it is not shown again (only its hash is kept)")


@clients_app.command("list")
def list_(
    database_url: DatabaseOpt = None, data_dir: DataDirOpt = None, config: ConfigOpt = None
) -> None:
    """List clients (never their secrets)."""

    async def action(ctx: ServerContext) -> list[client_service.ClientView]:
        return await client_service.list_clients(ctx)

    table = Table("client_id", "type", "grants", "scopes", "audiences", "roles")
    for c in run_with_context(settings_from(config, database_url, data_dir), action):
        table.add_row(
            c.client_id,
            "public" if c.public else "confidential",
            " ".join(c.grant_types),
            " ".join(c.scopes),
            " ".join(c.audiences),
            " ".join(c.roles),
        )
    Console().print(table)


@clients_app.command("remove")
def remove(
    client_id: Annotated[str, typer.Argument(help="The client id")],
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Delete a client and revoke its own tokens."""

    async def action(ctx: ServerContext) -> bool:
        return await client_service.remove_client(ctx, client_id, info=_CLI)

    if not run_with_context(settings_from(config, database_url, data_dir), action):
        raise NotFound(f"no client {client_id!r}")
    typer.echo(f"client {client_id} removed")
