"""``authmesh demo``: the auth server, a REST and a GraphQL service, on one machine."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from authmesh.errors import ConfigError

__all__ = ["demo"]


def demo(
    data_dir: Annotated[
        Path, typer.Option(help="Folder for the demo's databases and demo.env")
    ] = Path("data"),
    host: Annotated[
        str,
        typer.Option(
            help="Host name in every URL, and the interface every part listens on "
            "(localhost listens on 127.0.0.1; passkeys need a name, not an IP address)"
        ),
    ] = "localhost",
    auth_port: Annotated[int, typer.Option(help="Port of the auth server")] = 8000,
    orders_port: Annotated[int, typer.Option(help="Port of the orders REST service")] = 8001,
    catalog_port: Annotated[int, typer.Option(help="Port of the catalog GraphQL service")] = 8002,
    webapp_port: Annotated[int, typer.Option(help="Port of the web app")] = 8003,
    fast_hashing: Annotated[
        bool,
        typer.Option(help="Cheap Argon2 parameters (tests only: weak against offline guessing)"),
    ] = False,
) -> None:
    """Start the demo system and print a walkthrough; Ctrl-C stops it.

    The first start creates the demo users and clients and prints their
    credentials once; later starts reuse the data folder.
    """
    _require_demo_packages()
    from authmesh.demo.launcher import DemoConfig, run_demo

    ports = (
        ("auth", auth_port),
        ("orders", orders_port),
        ("catalog", catalog_port),
        ("webapp", webapp_port),
    )
    for name, port in ports:
        if not 1 <= port <= 65535:
            raise typer.BadParameter(f"--{name}-port must be between 1 and 65535")
    config = DemoConfig(
        data_dir=data_dir.resolve(),
        host=host,
        auth_port=auth_port,
        orders_port=orders_port,
        catalog_port=catalog_port,
        webapp_port=webapp_port,
        argon2_fast=fast_hashing,
    )
    raise typer.Exit(run_demo(config))


#: What the demo's four processes import, from the ``demo`` extra.
_DEMO_PACKAGES = ("fastapi", "uvicorn", "sqlalchemy", "flask", "strawberry", "jinja2")


def _require_demo_packages() -> None:
    """Name the missing extra rather than fail with a traceback half-way through the start.

    Raises:
        ConfigError: a package of the ``demo`` extra is not installed.
    """
    missing = [name for name in _DEMO_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"'demo' needs the demo extra ({', '.join(missing)} not installed): "
            "pip install 'authmesh[demo]'"
        )
