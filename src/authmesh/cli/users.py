"""``authmesh users``: manage accounts in the server's database."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from authmesh.cli.formatting import utc_time
from authmesh.cli.server_context import (
    ConfigOpt,
    DatabaseOpt,
    DataDirOpt,
    run_with_context,
    settings_from,
)
from authmesh.server import accounts
from authmesh.server.context import RequestInfo, ServerContext

if TYPE_CHECKING:
    from authmesh.server.mfa.factors import Factors

__all__ = ["users_app"]

users_app = typer.Typer(
    help="Create, list, block and manage users and their second factors.", no_args_is_help=True
)
_CLI = RequestInfo(actor="cli")
RoleOpt = Annotated[list[str] | None, typer.Option("--role", "-r", help="A role (repeatable)")]
UserArg = Annotated[str, typer.Argument(help="The username")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input")
]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _print_user(view: accounts.UserView) -> None:
    state = "blocked" if view.blocked else "active"
    typer.echo(f"{view.username}  id={view.id}  roles={','.join(view.roles) or '-'}  {state}")


@users_app.command("add")
def add(
    username: UserArg,
    role: RoleOpt = None,
    password_stdin: PasswordStdin = False,
    email: Annotated[
        str | None, typer.Option(help="Email address, released with the email scope")
    ] = None,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create a user (the first admin: `authmesh users add admin --role admin`)."""
    password = _read_password(password_stdin)

    async def action(ctx: ServerContext) -> accounts.UserView:
        return await accounts.create_user(
            ctx, username=username, password=password, roles=role or [], email=email, info=_CLI
        )

    _print_user(run_with_context(settings_from(config, database_url, data_dir), action))


@users_app.command("list")
def list_(
    database_url: DatabaseOpt = None, data_dir: DataDirOpt = None, config: ConfigOpt = None
) -> None:
    """List users."""

    async def action(ctx: ServerContext) -> list[accounts.UserView]:
        return await accounts.list_users(ctx, limit=10_000)

    views = run_with_context(settings_from(config, database_url, data_dir), action)
    table = Table("username", "id", "roles", "state")
    for v in views:
        table.add_row(v.username, v.id, ", ".join(v.roles), "blocked" if v.blocked else "active")
    Console().print(table)


@users_app.command("block")
def block(
    username: UserArg,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Block a user and revoke every token they hold."""

    async def action(ctx: ServerContext) -> accounts.UserView:
        return await accounts.block_user(ctx, username, info=_CLI)

    _print_user(run_with_context(settings_from(config, database_url, data_dir), action))


@users_app.command("unblock")
def unblock(
    username: UserArg,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Let a blocked user log in again."""

    async def action(ctx: ServerContext) -> accounts.UserView:
        return await accounts.unblock_user(ctx, username, info=_CLI)

    _print_user(run_with_context(settings_from(config, database_url, data_dir), action))


@users_app.command("roles")
def roles(
    username: UserArg,
    role: Annotated[list[str] | None, typer.Argument(help="The complete new set of roles")] = None,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Replace a user's roles (no roles given: remove all)."""

    async def action(ctx: ServerContext) -> accounts.UserView:
        return await accounts.set_roles(ctx, username, role or [], info=_CLI)

    _print_user(run_with_context(settings_from(config, database_url, data_dir), action))


@users_app.command("passwd")
def passwd(
    username: UserArg,
    password_stdin: PasswordStdin = False,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Set a user's password; their sessions end."""
    password = _read_password(password_stdin)

    async def action(ctx: ServerContext) -> None:
        await accounts.set_password(ctx, username, password, info=_CLI)

    run_with_context(settings_from(config, database_url, data_dir), action)
    typer.echo(f"password of {username} changed; every session of the user has ended")


@users_app.command("logout")
def logout(
    username: UserArg,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Force re-authentication: end every session of the user."""

    async def action(ctx: ServerContext) -> int:
        return await accounts.logout_all(ctx, username, info=_CLI, forced=True)

    ended = run_with_context(settings_from(config, database_url, data_dir), action)
    typer.echo(f"{ended} session(s) of {username} ended")


@users_app.command("mfa")
def mfa(
    username: UserArg,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """List a user's second factors: kind, name, when added and last used (never a secret)."""

    async def action(ctx: ServerContext) -> Factors:
        # Imported here: the factors' libraries load only for the commands that need them.
        from authmesh.server.mfa.admin import user_factors

        return await user_factors(ctx, username)

    found = run_with_context(settings_from(config, database_url, data_dir), action)
    if not found.enabled:
        typer.echo(f"{username} has no second factor: signs in with a password alone")
        return
    table = Table("kind", "name", "created (UTC)", "last used (UTC)", "without password")
    for factor in found.factors:
        table.add_row(
            factor.kind,
            factor.name,
            utc_time(factor.created_at),
            utc_time(factor.last_used_at, missing="never"),
            "yes" if factor.passwordless else "no",
        )
    Console().print(table)
    typer.echo(f"{found.recovery_codes_left} unused recovery code(s) left")


@users_app.command("mfa-reset")
def mfa_reset(
    username: UserArg,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Remove every second factor and recovery code of a user who lost their device; every
    session of the user ends (audited as mfa_reset)."""

    async def action(ctx: ServerContext) -> int:
        from authmesh.server.mfa.admin import reset_user_factors

        return await reset_user_factors(ctx, username, info=_CLI)

    removed = run_with_context(settings_from(config, database_url, data_dir), action)
    typer.echo(
        f"{removed} factor(s) of {username} removed with their recovery codes; "
        "every session of the user has ended"
    )
