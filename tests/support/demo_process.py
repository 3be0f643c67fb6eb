"""Start ``authmesh demo`` as a user does, in a temporary folder, on free ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from authmesh.demo.env import read_env
from authmesh.testing import free_port

__all__ = ["DemoProcess", "console_script"]

READY = "authmesh demo is running"


def console_script() -> Path:
    """The ``authmesh`` command installed next to this interpreter (what ``make run`` runs)."""
    return Path(sys.executable).parent / "authmesh"


@dataclass
class DemoProcess:
    """One run of the demo: its folder, ports, process and captured output."""

    folder: Path
    ports: tuple[int, int, int, int]
    proc: subprocess.Popen[str] | None = None
    #: ``--host``; ``None`` for the default, as ``make run`` starts it.
    host: str | None = None

    @classmethod
    def in_folder(cls, folder: Path) -> DemoProcess:
        # The walkthrough calls .venv/bin/authmesh from the folder, as from a clone.
        venv = folder / ".venv"
        if not venv.exists():
            venv.symlink_to(Path(sys.executable).parent.parent)
        return cls(folder, (free_port(), free_port(), free_port(), free_port()))

    @property
    def log(self) -> Path:
        return self.folder / "demo.out"

    def args(self) -> list[str]:
        auth, orders, catalog, webapp = self.ports
        return [
            str(console_script()),
            "demo",
            "--auth-port",
            str(auth),
            "--orders-port",
            str(orders),
            "--catalog-port",
            str(catalog),
            "--webapp-port",
            str(webapp),
            "--fast-hashing",
            *(["--host", self.host] if self.host else []),
        ]

    def start(self, timeout: float = 90.0) -> str:
        """Start and wait for the banner; returns the output so far."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHMESH_")}
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                self.args(),
                cwd=self.folder,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text()
            if READY in text and text.rstrip().endswith("$AUTHMESH_ISSUER/account/password"):
                return text
            if self.proc.poll() is not None:
                raise AssertionError(f"the demo exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"the demo did not come up in {timeout} s:\n{self.log.read_text()}")

    def stop(self, timeout: float = 30.0) -> int:
        """Ctrl-C, as a user stops it; the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("the demo did not stop on Ctrl-C") from None
        return self.proc.returncode

    def facts(self) -> dict[str, str]:
        return read_env(self.folder / "data" / "demo.env")
