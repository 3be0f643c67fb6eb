"""The ``authmesh`` command: the root app, its sub-commands, and error-to-exit mapping.

A sub-command lives in its own module and is registered here with one line in
:data:`SUBCOMMANDS`; it is imported only when it runs, so the token tools never
load the auth server.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any

import typer

from authmesh import __version__
from authmesh.cli.errors import report_error
from authmesh.cli.lazy import LazyGroup
from authmesh.errors import AuthmeshError

__all__ = ["SUBCOMMANDS", "app", "main"]

#: Sub-command name -> ``"module:attribute"`` (a Typer app or a function).
SUBCOMMANDS: Mapping[str, str] = MappingProxyType(
    {
        "token": "authmesh.inspector.command:token_app",
        "keys": "authmesh.cli.keys:keys_app",
        "serve": "authmesh.cli.serve:serve",
        "db": "authmesh.cli.serve:db_app",
        "users": "authmesh.cli.users:users_app",
        "clients": "authmesh.cli.clients:clients_app",
        "audit": "authmesh.cli.audit:audit",
        "dev-cert": "authmesh.cli.devcert:dev_cert",
        "demo": "authmesh.cli.demo:demo",
        "doctor": "authmesh.cli.doctor:doctor",
    }
)


class _RootGroup(LazyGroup):
    """The root command: lazy sub-commands, and the one place errors become exit codes."""

    lazy_commands = SUBCOMMANDS

    def invoke(self, ctx: Any) -> Any:
        """Run the sub-command; an :class:`AuthmeshError` is a message and a status, no trace."""
        try:
            return super().invoke(ctx)
        except AuthmeshError as exc:
            raise typer.Exit(report_error(exc)) from None


app = typer.Typer(
    name="authmesh",
    cls=_RootGroup,
    help="JWT authentication for microservices: auth server, keys, users and token tools.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold keys and secrets
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"authmesh {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """JWT authentication for microservices: auth server, keys, users and token tools."""


def main() -> None:
    """Entry point of the ``authmesh`` console script."""
    app(prog_name="authmesh")
