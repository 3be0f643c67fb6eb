"""The README's shell blocks for running the auth server, run as a reader pastes them.

In a fresh folder with ``.venv/bin/authmesh``, each command runs as written, with
two stand-ins a reader supplies themselves: the password typed at the prompt
(and then given to ``curl`` instead of ``...``), and the port, set with the
documented ``AUTHMESH_PORT`` so the test never collides with a running demo.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from authmesh.testing import free_port, wait_for

README = Path(__file__).resolve().parents[2] / "README.md"
PASSWORD = "a-long-admin-password-1"


def _block(heading: str) -> list[str]:
    """The commands of the first ``sh`` block under ``heading``, continuations joined."""
    text = README.read_text()
    section = text[text.index(heading) :]
    body = re.search(r"```sh\n(.*?)```", section, flags=re.S)
    assert body is not None, f"no sh block under {heading}"
    commands, pending = [], ""
    for line in body.group(1).splitlines():
        line = line.split("  #", 1)[0].rstrip() if "  #" in line else line.rstrip()
        if line.startswith("#") or not line.strip():
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        commands.append((pending + line).strip())
        pending = ""
    return commands


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "authmesh").symlink_to(Path(sys.executable).parent / "authmesh")
    return tmp_path


def _env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHMESH_")}
    env["AUTHMESH_PORT"] = str(port)
    # Cheap hashing: the block's own settings are not what this test is about.
    env.update({"AUTHMESH_ARGON2_TIME_COST": "1", "AUTHMESH_ARGON2_MEMORY_COST": "1024"})
    return env


def test_run_the_auth_server_on_its_own(folder: Path) -> None:
    commands = _block("## Run the auth server on its own")
    port = free_port()
    env = _env(port)
    server: subprocess.Popen[bytes] | None = None
    answer = None
    try:
        for command in commands:
            if command.startswith(".venv/bin/authmesh serve"):
                server = subprocess.Popen(
                    shlex.split(command),
                    cwd=folder,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                wait_for(
                    lambda: _answers(f"http://127.0.0.1:{port}/healthz"),
                    timeout=30,
                    message="the server of the README block",
                )
                continue
            if command.startswith("curl"):
                command = command.replace("password=...", f"password={PASSWORD}").replace(
                    "127.0.0.1:8000", f"127.0.0.1:{port}"
                )
            typed = f"{PASSWORD}\n{PASSWORD}\n" if "users add" in command else ""
            done = subprocess.run(
                shlex.split(command),
                cwd=folder,
                env=env,
                input=typed,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, f"{command}\n{done.stderr}"
            if command.startswith("curl"):
                answer = json.loads(done.stdout)
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)
            assert server.stderr is not None
            server.stderr.close()
    assert answer is not None and answer["token_type"] == "Bearer", answer
    assert (folder / "data" / "authmesh.db").exists()


def test_sign_users_in_registers_its_clients(folder: Path) -> None:
    env = _env(free_port())
    upgraded = subprocess.run(
        [".venv/bin/authmesh", "db", "upgrade"], cwd=folder, env=env, capture_output=True
    )
    assert upgraded.returncode == 0
    commands = _block("## Sign users in (OpenID Connect)")
    assert len(commands) == 3
    for command in commands:
        done = subprocess.run(
            shlex.split(command), cwd=folder, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"{command}\n{done.stderr}"
    listed = subprocess.run(
        [".venv/bin/authmesh", "clients", "list"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    for client in ("shop", "spa", "partner"):
        assert client in listed.stdout


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
