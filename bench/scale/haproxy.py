"""HAProxy in front of the auth-server replicas: its configuration and its process.

:func:`render_config` is the configuration ``docs/deploying.md`` shows in full;
the scale test runs exactly that, with its own ports.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Self

import httpx

__all__ = ["HAPROXY", "HaproxyProcess", "haproxy_path", "render_config"]

HAPROXY = "/usr/sbin/haproxy"


def haproxy_path() -> str | None:
    """The haproxy binary, or ``None`` when it is not installed."""
    return shutil.which("haproxy") or (HAPROXY if Path(HAPROXY).exists() else None)


def render_config(
    *,
    bind: str,
    servers: Sequence[tuple[str, str]],
    health_path: str = "/readyz",
    tls_pem: str | None = None,
) -> str:
    """The HAProxy configuration for replicas ``servers`` (``(name, "host:port")``).

    Args:
        bind: the front address (``"*:443"``, ``"127.0.0.1:8080"``).
        health_path: the replicas' readiness endpoint (``/readyz``).
        tls_pem: certificate and key in one PEM file: HAProxy terminates TLS.
    """
    tls = f" ssl crt {tls_pem} alpn h2,http/1.1" if tls_pem else ""
    lines = [
        "global",
        "    # Each connection takes two descriptors (client and replica side).",
        "    maxconn 4096",
        "",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    # The revocation feed is one long response (Server-Sent Events), governed",
        "    # by these two inactivity timeouts (not 'timeout tunnel', which is for",
        "    # upgraded connections). The server writes a heartbeat every 2 s",
        "    # (AUTHMESH_FEED_HEARTBEAT), so a healthy stream never idles this long.",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
        "    timeout queue 5s",
        "    # Send each chunk of a feed stream at once: without it a small SSE event",
        "    # can wait ~200 ms (Nagle's algorithm against delayed ACKs).",
        "    option http-no-delay",
        "    # The client's address for the replicas' rate limits, login back-off and",
        "    # audit (they believe it from this balancer: AUTHMESH_TRUSTED_PROXIES).",
        "    option forwardfor",
        "    # A request that found its replica dead (refused, or closed without an",
        "    # answer) is sent again to another one. Safe for the token endpoint: a",
        "    # refresh retried within AUTHMESH_REFRESH_REUSE_GRACE answers the same",
        "    # new token, the other grants and blocks are idempotent or create a",
        "    # session nobody holds.",
        "    retries 2",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response response-timeout",
        "",
        "frontend authmesh",
        f"    bind {bind}{tls}",
        "    default_backend replicas",
        "",
        "backend replicas",
        "    # Feed streams stay open for hours: balance on open connections, so a",
        "    # restarted replica takes the next ones rather than round-robin's share.",
        "    balance leastconn",
        "    option httpchk",
        f"    http-check send meth GET uri {health_path}",
        "    http-check expect status 200",
        "    # A replica is out after 3 failed checks (~1.5 s once the first fails),",
        "    # back after 2 good ones. Each check may take 3 s: a replica that is only",
        "    # busy must not leave the pool (if all did, every request would get 503).",
        "    # A dead one is left at once anyway: its connections are refused, and",
        "    # the request is redispatched to another replica.",
        "    timeout check 3s",
        "    default-server check inter 1s fastinter 250ms downinter 1s fall 3 rise 2",
        *(f"    server {name} {address}" for name, address in servers),
    ]
    return "\n".join(lines) + "\n"


class HaproxyProcess:
    """HAProxy in the foreground (``-db``) with a generated configuration."""

    def __init__(self, config: str, url: str) -> None:
        binary = haproxy_path()
        if binary is None:
            raise RuntimeError("haproxy is not installed (apt-get install haproxy)")
        self.url = url
        self._dir = Path(tempfile.mkdtemp(prefix="authmesh-haproxy-"))
        self.config_path = self._dir / "haproxy.cfg"
        self.config_path.write_text(config)
        self._args = [binary, "-db", "-f", str(self.config_path)]
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    def start(self, probe: str = "/healthz", timeout: float = 30) -> Self:
        """Start; wait until a request through it reaches a replica (200 on ``probe``)."""
        check = subprocess.run([*self._args, "-c", "-q"], capture_output=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"invalid haproxy configuration: {check.stderr.decode()}")
        self._log = (self._dir / "haproxy.log").open("wb")
        self.proc = subprocess.Popen(self._args, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self._dir / "haproxy.log").read_text()[-2000:]
                raise RuntimeError(f"haproxy exited with status {self.proc.returncode}: {log}")
            try:
                if httpx.get(self.url + probe, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"haproxy did not pass a request to a replica in {timeout} s")

    def stop(self) -> None:
        """Stop at once (SIGTERM), then remove the configuration."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
