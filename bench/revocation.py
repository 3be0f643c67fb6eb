"""Part ``revocation``: how fast a block reaches every service, and what the state costs.

**Propagation.** A real auth server (SQLite, one process) and 20 service
processes (:mod:`bench.revocation_service`), each a ``ServiceAuth`` following
the revocation feed (SSE) in a thread. Per trial: every service accepts user
*i*'s access token; an admin calls ``POST /admin/users/user{i}/block``; each
service reports the wall-clock instant it first rejects that token. The trial's
figure is the time from the block call's *response* to the *last* service's
rejection (negative when every service already rejected before the answer
reached the admin). 50 trials on SQLite, then 50 on PostgreSQL.
Target: p99 ≤ 100 ms.

**Memory.** :class:`RevocationState` holding 100,000 live events (a third each
of ``sub``, ``sid`` and ``jti``, 32-character values), measured with
``tracemalloc`` as in ``tests/service/test_revocations.py`` (the value strings
counted as the state's own). Target: ≤ 20 MB.
"""

from __future__ import annotations

import gc
import os
import selectors
import statistics
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.harness import Spread
from bench.report import PartResult
from bench.servers import (
    FAST_ARGON2,
    AuthServer,
    cpu_seconds,
    database,
    postgres_available,
    seed,
)

__all__ = ["run"]

SERVICES = 20
TRIALS = 50
TARGET_P99_MS = 100.0
TARGET_MB = 20.0
_AUDIENCE = "orders"


def _memory_mb(events: int = 100_000) -> float:
    from authmesh.revocation import RevocationEvent
    from authmesh.service._revocations import RevocationState

    now = time.time()
    values = [uuid.uuid4().hex for _ in range(events)]
    evs = [
        RevocationEvent(
            kind=("jti", "sid", "sub")[i % 3],  # type: ignore[arg-type]
            value=v,
            not_before=now,
            expires_at=now + 60 + i % 900,
            cursor=i + 1,
        )
        for i, v in enumerate(values)
    ]
    gc.collect()
    tracemalloc.start()
    try:
        state = RevocationState()
        for ev in evs:
            state.apply(ev)
        used, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(state) == events
    return (used + sum(sys.getsizeof(v) for v in values)) / 1e6


class _Services:
    """The 20 service processes and their line-based protocol."""

    def __init__(self, env: dict[str, str], n: int) -> None:
        root = Path(__file__).resolve().parent.parent
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.revocation_service"],
                cwd=root,
                env={**os.environ, **env},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                bufsize=1,
            )
            for _ in range(n)
        ]
        self.sel = selectors.DefaultSelector()
        for i, p in enumerate(self.procs):
            assert p.stdout is not None
            self.sel.register(p.stdout, selectors.EVENT_READ, i)

    def collect(self, expect: str, timeout: float) -> dict[int, str]:
        """One line from every service, each starting with ``expect``."""
        got: dict[int, str] = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(self.procs):
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{len(self.procs) - len(got)} services did not say {expect}")
            for key, _ in self.sel.select(left):
                line = key.fileobj.readline().strip()  # type: ignore[union-attr]
                if not line:
                    raise RuntimeError(f"service {key.data} exited")
                if not line.startswith(expect):
                    raise RuntimeError(f"service {key.data}: {line!r}, expected {expect}")
                got[key.data] = line
        return got

    def cpu(self) -> float:
        """CPU seconds used so far by all the service processes together."""
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def send(self, line: str) -> None:
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.write(line + "\n")
            p.stdin.flush()

    def close(self) -> None:
        for p in self.procs:
            if p.stdin:
                p.stdin.close()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _login(client: httpx.Client, username: str, password: str) -> str:
    r = client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "client_id": "web",
            "username": username,
            "password": password,
            "audience": _AUDIENCE,
        },
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


@dataclass
class _Trials:
    """One backend's trials."""

    backend: str
    latencies: list[float] = field(default_factory=list)
    firsts: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    service_cpu: list[float] = field(default_factory=list)
    setup: float = 0.0

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _trials(backend: str, budget: float) -> _Trials:
    """Up to 50 trials on one backend (at least 10, then while the budget lasts)."""
    started = time.monotonic()
    out = _Trials(backend)
    with database(backend) as db:
        settings = db.settings(
            rate_limit_per_minute=0,
            login_max_failures=100000,
            login_lock_after=100000,
            **FAST_ARGON2,
        )
        seeded = seed(
            settings,
            users=[("admin", "admin-password-1", ["admin"])]
            + [(f"user{i}", f"user{i}-password", ["user"]) for i in range(TRIALS)],
            clients=[
                {
                    "client_id": "web",
                    "public": True,
                    "grant_types": ["password", "refresh_token"],
                    "audiences": [_AUDIENCE],
                },
                {"client_id": "svc", "grant_types": ["client_credentials"]},
            ],
        )
        with AuthServer(settings) as server, httpx.Client(base_url=server.url, timeout=30) as hc:
            admin = _login(hc, "admin", "admin-password-1")
            user_tokens = [_login(hc, f"user{i}", f"user{i}-password") for i in range(TRIALS)]
            services = _Services(
                {
                    "BENCH_ISSUER": server.url,
                    "BENCH_AUDIENCE": _AUDIENCE,
                    "BENCH_CLIENT_ID": "svc",
                    "BENCH_CLIENT_SECRET": seeded.secrets["svc"],
                },
                SERVICES,
            )
            try:
                services.collect("ready", 120)
                out.setup = time.monotonic() - started
                for i in range(TRIALS):
                    if i >= 10 and time.monotonic() - started > budget:
                        break
                    services.send(f"watch {user_tokens[i]}")
                    services.collect("ok", 30)
                    time.sleep(0.05)  # let the services go quiet
                    cpu0 = server.cpu()
                    svc0 = services.cpu()
                    r = hc.post(
                        f"/admin/users/user{i}/block",
                        headers={"Authorization": f"Bearer {admin}"},
                    )
                    answered = time.time()
                    r.raise_for_status()
                    lines = services.collect("revoked", 30)
                    out.server_cpu.append((server.cpu() - cpu0) * 1e3)
                    out.service_cpu.append((services.cpu() - svc0) * 1e3)
                    instants = [float(line.split()[1]) for line in lines.values()]
                    out.latencies.append((max(instants) - answered) * 1e3)
                    out.firsts.append((min(instants) - answered) * 1e3)
            finally:
                services.close()
    return out


def run(budget: float) -> PartResult:
    """The trials on SQLite, then PostgreSQL (if it answers); then the memory figure."""
    started = time.monotonic()
    backends = ["sqlite"] + (["postgres"] if postgres_available() else [])
    results = [_trials(b, (budget - 5) / len(backends)) for b in backends]
    memory = _memory_mb()
    m_ok = memory <= TARGET_MB
    verdicts = [
        f"- **propagation, {t.backend}**: p99 {t.p99:.1f} ms over {len(t.latencies)} trials — "
        f"{'met' if t.p99 <= TARGET_P99_MS else 'NOT met'} (≤ {TARGET_P99_MS:.0f} ms)"
        for t in results
    ]
    verdicts.append(
        f"- **memory**: 100,000 live events take {memory:.1f} MB — "
        f"{'met' if m_ok else 'NOT met'} (≤ {TARGET_MB:.0f} MB)"
    )
    cols = " | ".join(t.backend for t in results)

    def row(label: str, cell: Callable[[_Trials], str]) -> str:
        return f"| {label} | " + " | ".join(cell(t) for t in results) + " |"

    rows = [
        row("trials", lambda t: str(len(t.latencies))),
        row(
            f"block response → last of {SERVICES} services rejects, median (IQR)",
            lambda t: Spread.of(t.latencies).cell(1, " ms"),
        ),
        row("min–max", lambda t: Spread.of(t.latencies).range_cell(1) + " ms"),
        row("p99", lambda t: f"{t.p99:.1f} ms"),
        row("mean", lambda t: f"{statistics.fmean(t.latencies):.1f} ms"),
        row(
            "block response → *first* service rejects, median (IQR)",
            lambda t: Spread.of(t.firsts).cell(1, " ms"),
        ),
        row(
            "auth-server CPU per trial (block + fan-out), median (IQR)",
            lambda t: Spread.of(t.server_cpu).cell(1, " ms"),
        ),
        row(
            f"CPU of the {SERVICES} services together per trial, median (IQR)",
            lambda t: Spread.of(t.service_cpu).cell(1, " ms"),
        ),
    ]
    markdown = (
        "## revocation — block to rejection in every service; memory of the state\n\n"
        f"_{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"{time.monotonic() - started:.0f} s; {SERVICES} service processes on the SSE feed "
        "of one auth server, per backend._\n\n"
        f"| figure | {cols} |\n| --- |{' ---: |' * len(results)}\n" + "\n".join(rows) + "\n\n"
        f"RevocationState holding 100,000 live events: **{memory:.1f} MB**.\n\n"
        "**Target** (p99 ≤ 100 ms; ≤ 20 MB):\n\n" + "\n".join(verdicts) + "\n\n"
        "Each service checks the watched token right after every event its feed "
        "applies (and every 50 ms as a safety net) and reports the wall-clock "
        "instant of the first rejection; all processes share the machine's clock. "
        "A negative figure means every service rejected the token before the "
        "admin's HTTP response was read. CPU times come from `/proc` in 10 ms ticks.\n\n"
        "Where the time goes: on a block the auth server commits the event, wakes "
        "its SSE streams, and reads the log once for all of them "
        "(src/authmesh/server/feed/tail.py); each stream writes the event to its "
        "service, which applies it in memory. Before that shared read each of the "
        "20 streams read the log in its own transaction (on SQLite `BEGIN "
        "IMMEDIATE`, so the reads queued on the write lock): the last service then "
        "followed the first by ~100 ms on SQLite (p99 244 ms) and ~30 ms on "
        "PostgreSQL (p99 42.5 ms).\n"
    )
    console = [
        f"{t.backend}: last service median {Spread.of(t.latencies).median:.1f} ms, "
        f"p99 {t.p99:.1f} ms, first service {Spread.of(t.firsts).median:.1f} ms, "
        f"server CPU {Spread.of(t.server_cpu).median:.0f} ms, "
        f"services CPU {Spread.of(t.service_cpu).median:.0f} ms ({len(t.latencies)} trials)"
        for t in results
    ]
    console.append(f"memory of 100k events: {memory:.1f} MB")
    return PartResult(markdown=markdown, summary=[*console, *verdicts])
