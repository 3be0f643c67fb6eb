"""Sub-commands that are imported only when used.

``authmesh token decode`` must start fast and must work without the server's
extras (SQLAlchemy, FastAPI…), so the root app and the ``keys`` group name their
sub-commands as ``"package.module:attribute"`` and import one only when it runs
(or when help lists it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup

from authmesh.errors import ConfigError

__all__ = ["LazyGroup", "load_command"]

_Command = TyperCommand | TyperGroup


#: The extra that installs a command's packages, where it is not ``server``.
EXTRA_OF: Mapping[str, str] = {"demo": "demo"}


def load_command(name: str, target: str) -> _Command:
    """Import ``target`` (``"module:attribute"``) and make it the command ``name``.

    The attribute may be a :class:`typer.Typer` (a group of commands) or a plain
    function (one command, its options from its signature).

    Raises:
        ImportError: the module is missing or broken (not a missing optional package).
        TypeError: the attribute is neither.
    """
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == "authmesh" or missing.startswith("authmesh."):
            raise  # our own module: a registration bug, not a missing extra
        return _unavailable(name, missing, EXTRA_OF.get(name, "server"))
    obj: Any = getattr(module, attribute)
    command: _Command
    if isinstance(obj, typer.Typer):
        command = typer.main.get_group(obj)
    elif callable(obj):
        command = _single(name, obj)
    else:
        raise TypeError(f"{target} is neither a Typer app nor a function")
    command.name = name
    return command


def _single(name: str, function: Callable[..., Any], **settings: Any) -> _Command:
    """One function as a command, the way ``@app.command()`` would make it."""
    single = typer.Typer(add_completion=False)
    single.command(name=name, **settings)(function)
    command = typer.main.get_command(single)
    assert isinstance(command, TyperCommand)
    return command


def _unavailable(name: str, missing: str, extra: str) -> _Command:
    """A stand-in for a command whose optional dependencies are not installed."""

    def explain() -> None:
        raise ConfigError(
            f"'{name}' needs the package {missing!r}, which is not installed: "
            f"pip install 'authmesh[{extra}]'"
        )

    explain.__doc__ = f"(unavailable: needs {missing})"
    return _single(
        name,
        explain,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


class LazyGroup(TyperGroup):
    """A Typer group whose :attr:`lazy_commands` are imported on first use.

    Subclass it, set ``lazy_commands`` to ``{"name": "module:attribute"}`` and pass
    the subclass as ``typer.Typer(cls=...)``; commands declared the usual way with
    ``@app.command()`` sit alongside and are listed first.
    """

    lazy_commands: ClassVar[Mapping[str, str]] = {}

    # ``ctx`` is typed ``Any``: the click ``Context`` typer passes is not public API.

    def list_commands(self, ctx: Any) -> list[str]:
        """Eager commands in declaration order, then the lazy ones in theirs."""
        names = super().list_commands(ctx)
        return names + [name for name in self.lazy_commands if name not in names]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command ``cmd_name``, importing it the first time."""
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.lazy_commands:
            command = load_command(cmd_name, self.lazy_commands[cmd_name])
            self.add_command(command, cmd_name)
        return command
