"""Operator mistakes read ``authmesh: error: …`` on one line, with no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

AUTHMESH = str(Path(sys.executable).parent / "authmesh")


def _authmesh(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHMESH_")}
    return subprocess.run(
        [AUTHMESH, *args], env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60
    )


def _one_line_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.stderr.startswith(f"authmesh: error: {message}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_serve_on_a_taken_port_starts_nothing(tmp_path: Path, taken_port: int) -> None:
    result = _authmesh("serve", "--port", str(taken_port), "--data-dir", "data", cwd=tmp_path)

    assert result.returncode == 2
    _one_line_error(result, f"cannot listen on 127.0.0.1:{taken_port}: the port is taken")
    assert not (tmp_path / "data").exists()


def test_removing_an_unknown_client(tmp_path: Path) -> None:
    assert _authmesh("db", "upgrade", "--data-dir", "data", cwd=tmp_path).returncode == 0

    result = _authmesh("clients", "remove", "nope", "--data-dir", "data", cwd=tmp_path)

    assert result.returncode == 1
    _one_line_error(result, "no client 'nope'")


def test_demo_without_its_extra_names_the_extra(tmp_path: Path) -> None:
    # The demo's packages made unimportable, as in an install without the demo extra.
    hide = (
        "import sys; sys.modules['flask'] = None; "
        "from authmesh.cli.main import main; sys.argv = ['authmesh', 'demo']; main()"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHMESH_")}
    result = subprocess.run(
        [sys.executable, "-c", hide],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    _one_line_error(result, "'demo' needs the demo extra (flask not installed)")
    assert "pip install 'authmesh[demo]'" in result.stderr
    assert not (tmp_path / "data").exists()
