"""A server in a child process, started and stopped the way an operator does it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

import httpx

__all__ = ["ServerProcess"]


class ServerProcess:
    """A command serving HTTP at ``url``; :meth:`start` waits until ``probe`` answers 200.

    The child inherits this environment without its ``AUTHMESH_*`` variables (so a
    test's own settings never leak in), plus ``env``. It can be stopped and
    started again.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        url: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        probe: str = "/healthz",
    ) -> None:
        self.args = list(args)
        self.url = url
        self.cwd = cwd
        self.probe = probe
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AUTHMESH_")}
        self.env = {**inherited, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The child's process id."""
        assert self.proc is not None, "not started"
        return self.proc.pid

    def start(self, timeout: float = 60) -> Self:
        """Start and wait until ``probe`` answers 200.

        Raises:
            RuntimeError: the child exited (its stderr's tail is in the message)
                or did not answer within ``timeout``.
        """
        self.proc = subprocess.Popen(
            self.args, cwd=self.cwd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                self._close_pipe()
                raise RuntimeError(f"{self.args[0]} exited: {err[-2000:]}")
            try:
                if httpx.get(self.url + self.probe, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{' '.join(self.args)} did not answer on {self.url} in {timeout} s")

    def stop(self) -> None:
        """SIGTERM, then wait (SIGKILL after 10 s); closes the stderr pipe."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._close_pipe()

    def _close_pipe(self) -> None:
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
