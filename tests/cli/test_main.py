"""The root app: version, lazy sub-commands, and the one mapping of errors to exit codes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import Result

import authmesh
from authmesh.cli import errors, keys, lazy, main
from authmesh.cli.main import SUBCOMMANDS, app

Run = Callable[..., Result]


def test_version(run: Run) -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"authmesh {authmesh.__version__}\n"


def test_help_lists_every_sub_command(run: Run) -> None:
    result = run("--help")
    assert result.exit_code == 0
    for name in ("token", "keys", "serve", "db", "users", "clients", "audit", "dev-cert", "demo"):
        assert f" {name} " in result.stdout


def test_keys_help_lists_generate_list_and_rotate(run: Run) -> None:
    result = run("keys", "--help")
    assert result.exit_code == 0
    for name in ("generate", "list", "rotate"):
        assert f" {name} " in result.stdout


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_every_registered_sub_command_loads(name: str) -> None:
    command = lazy.load_command(name, SUBCOMMANDS[name])
    assert command.name == name
    assert command.help or command.callback


def test_token_tools_do_not_import_the_server() -> None:
    code = textwrap.dedent(
        """
        import contextlib, io, sys
        from authmesh.cli.main import main

        sys.argv = ["authmesh", "keys", "generate", "--print-private"]
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main()
            except SystemExit:
                pass
        print(sorted(m for m in sys.modules if m.startswith(("authmesh.server", "sqlalchemy"))))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module", [main, lazy, errors, keys])
def test_all_is_declared(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert names and all(hasattr(module, name) for name in names)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], None]]:
    """Register ``authmesh NAME`` from a throw-away module with the given source."""
    modules: list[str] = []

    def register(name: str, source: str) -> None:
        module = f"cli_plugin_{uuid.uuid4().hex}"
        modules.append(module)
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(tmp_path))
        table = {**main._RootGroup.lazy_commands, name: f"{module}:command"}
        monkeypatch.setattr(main._RootGroup, "lazy_commands", table)

    yield register
    for module in modules:
        sys.modules.pop(module, None)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("authmesh.errors.ConfigError('the setting x is missing')", 2),
        ("authmesh.errors.InvalidKey('the setting x is missing')", 2),
        ("authmesh.jose.TokenExpired('the setting x is missing')", 1),
        ("authmesh.errors.AuthmeshError('the setting x is missing')", 1),
    ],
    ids=["config-error", "invalid-key", "token-rejected", "other"],
)
def test_authmesh_errors_become_a_message_and_a_status(
    run: Run, plugin: Callable[[str, str], None], error: str, code: int
) -> None:
    plugin(
        "boom",
        f"""
        import authmesh.errors, authmesh.jose

        def command() -> None:
            raise {error}
        """,
    )
    result = run("boom")
    assert result.exit_code == code
    assert result.stderr == "authmesh: error: the setting x is missing\n"
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_bug_is_not_hidden(run: Run, plugin: Callable[[str, str], None]) -> None:
    plugin("bug", "def command() -> None:\n    raise KeyError('oops')\n")
    result = run("bug")
    assert isinstance(result.exception, KeyError)


def test_a_missing_optional_dependency_is_explained(
    run: Run, plugin: Callable[[str, str], None]
) -> None:
    plugin("needs-extra", "import surely_not_installed_pkg\n\ndef command() -> None: ...\n")
    help_ = run("--help")
    assert help_.exit_code == 0
    assert "unavailable: needs surely_not_installed_pkg" in help_.stdout
    result = run("needs-extra", "--some-option", "x")
    assert result.exit_code == 2
    assert "'needs-extra' needs the package 'surely_not_installed_pkg'" in result.stderr
    assert "pip install 'authmesh[server]'" in result.stderr


def test_a_broken_registration_is_not_mistaken_for_a_missing_extra() -> None:
    with pytest.raises(ModuleNotFoundError):
        lazy.load_command("x", "authmesh.cli.no_such_module:app")


def test_a_typer_app_registers_as_a_group(run: Run, plugin: Callable[[str, str], None]) -> None:
    plugin(
        "grp",
        """
        import typer

        command = typer.Typer()

        @command.command("hello")
        def hello(name: str) -> None:
            typer.echo(f"hello {name}")

        @command.command("bye")
        def bye() -> None:
            typer.echo("bye")
        """,
    )
    result = run("grp", "hello", "world")
    assert result.exit_code == 0
    assert result.stdout == "hello world\n"
    assert isinstance(app, typer.Typer)
