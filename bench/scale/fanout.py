"""Fan-out: one replica serving 1,000 revocation-feed followers.

One ``authmesh serve`` process (PostgreSQL, Redis), ``followers`` streams from
one :mod:`bench.scale.followers` process (one ``epoll`` loop over every
socket). Per trial the admin blocks a user on the replica; the figure is the
time from the block's response to the instant the *last* follower has seen the
event. Memory per follower is the replica's resident set with every stream
open (and a few blocks served), minus the same before the first stream, over
the number of followers.

On a machine of two CPUs or more the replica is pinned to one CPU and the
followers and this driver to another (``os.sched_setaffinity``), so what is
measured is the replica's fan-out, not the followers' reading competing with it
for a core. PostgreSQL and Redis are not pinned (they are shared).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.scale.checks import percentile
from bench.scale.cluster import (
    ADMIN,
    AUDIENCE,
    PUBLIC_CLIENT,
    STREAMS_PER_CLIENT,
    Cluster,
    cluster,
    feed_client,
)
from bench.servers import cpu_seconds

__all__ = ["TARGET_P99_MS", "FanOut", "measure"]

TARGET_P99_MS = 250.0
#: Seconds of quiet with every stream open, to measure the heartbeats' CPU.
IDLE_WINDOW = 4.0
_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class FanOut:
    """The fan-out figures."""

    followers: int
    processes: int
    latencies_ms: list[float] = field(default_factory=list)
    #: CPUs of the replica and of the followers (and driver); empty when not pinned.
    server_cpus: set[int] = field(default_factory=set)
    follower_cpus: set[int] = field(default_factory=set)
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    open_seconds: float = 0.0
    #: Server CPU per second with every stream open and nothing happening (heartbeats).
    idle_cpu_per_second: float = 0.0
    #: Server CPU from a block's request to its last follower: the block and its fan-out.
    cpu_per_block: float = 0.0
    #: CPU of the follower processes per block (reading 1,000 sockets).
    follower_cpu_per_block: float = 0.0

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 0.99)

    @property
    def kb_per_follower(self) -> float:
        return (self.rss_after_mb - self.rss_before_mb) * 1024 / self.followers


def pin(pid: int, cpus: set[int]) -> None:
    """Pin every thread of process ``pid`` to ``cpus`` (``0``: this process)."""
    pid = pid or os.getpid()
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)


def split_cpus() -> tuple[set[int], set[int]]:
    """One CPU for the replica, the others for the followers; empty sets on one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return set(), set()
    return {cpus[0]}, set(cpus[1:])


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from ``/proc``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class _Followers:
    """The follower processes and their line protocol."""

    def __init__(self, url: str, secrets: dict[str, str], total: int, processes: int) -> None:
        share = [total // processes + (i < total % processes) for i in range(processes)]
        clients = [feed_client(i) for i in range(-(-total // STREAMS_PER_CLIENT))]
        env = {
            **os.environ,
            "SCALE_STREAMS_PER_CLIENT": str(STREAMS_PER_CLIENT),
            "SCALE_CLIENTS": json.dumps([[name, secrets[name]] for name in clients]),
        }
        starts = [sum(share[:p]) for p in range(processes)]
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.scale.followers", str(n), str(first), url],
                cwd=_ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            for n, first in zip(share, starts, strict=True)
        ]  # fmt: skip
        self.sel = selectors.DefaultSelector()
        for i, p in enumerate(self.procs):
            assert p.stdout is not None
            self.sel.register(p.stdout, selectors.EVENT_READ, i)

    def collect(self, expect: str, timeout: float) -> list[str]:
        got: dict[int, str] = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(self.procs):
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"follower processes did not say {expect!r} in {timeout} s")
            for key, _ in self.sel.select(left):
                line = key.fileobj.readline().strip()  # type: ignore[union-attr]
                if not line.startswith(expect):
                    raise RuntimeError(f"follower process {key.data}: {line!r}")
                got[key.data] = line
        return list(got.values())

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


def _token(http: httpx.Client, username: str, password: str) -> str:
    r = http.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "client_id": PUBLIC_CLIENT,
            "username": username,
            "password": password,
            "audience": AUDIENCE,
        },
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def measure(
    *, followers: int = 1000, processes: int = 1, trials: int = 50, pinned: bool = True
) -> FanOut:
    """Open the streams, block ``trials`` users one after another, time each."""
    out = FanOut(followers, processes)
    clients = -(-followers // STREAMS_PER_CLIENT)
    everywhere = os.sched_getaffinity(0)
    with cluster(replicas=1, users=1, victims=trials, feed_clients=clients) as c:
        replica = c.replicas[0]
        if pinned:
            out.server_cpus, out.follower_cpus = split_cpus()
        if out.server_cpus:
            pin(replica.pid, out.server_cpus)
            pin(0, out.follower_cpus)  # the followers inherit it
        try:
            _trials(out, c, trials)
        finally:
            pin(0, everywhere)
    return out


def _trials(out: FanOut, c: Cluster, trials: int) -> None:
    replica = c.replicas[0]
    with httpx.Client(base_url=replica.url, timeout=30) as http:
        admin = {"Authorization": f"Bearer {_token(http, *ADMIN)}"}
        for _ in range(20):  # warm the paths a block takes before the baseline
            http.get("/healthz")
        time.sleep(1)
        out.rss_before_mb = rss_mb(replica.pid)
        started = time.monotonic()
        group = _Followers(replica.url, c.secrets, out.followers, out.processes)
        try:
            group.collect("ready", 180)
            out.open_seconds = time.monotonic() - started
            if out.server_cpus:  # threads the replica started meanwhile, if any
                pin(replica.pid, out.server_cpus)
            time.sleep(1)
            cpu0, t0 = cpu_seconds(replica.pid), time.monotonic()
            time.sleep(IDLE_WINDOW)
            cpu1, t1 = cpu_seconds(replica.pid), time.monotonic()
            out.idle_cpu_per_second = (cpu1 - cpu0) / (t1 - t0)
            server_cpu = readers_cpu = 0.0
            for i in range(trials):
                cursor = int(http.get("/healthz").json()["latest_cursor"])
                group.send(f"arm {cursor}")
                time.sleep(0.2)  # let the streams go quiet
                # CPU from the block's request to the last follower's sighting: the
                # block and its fan-out. The streams' heartbeats are hardly ever due
                # then (each block's write restarts their 2 s); /proc counts in
                # clock ticks, which averages out over the trials.
                cpu_before = cpu_seconds(replica.pid)
                readers_before = sum(cpu_seconds(p.pid) for p in group.procs)
                r = http.post(f"/admin/users/victim{i}/block", headers=admin)
                answered = time.time()
                r.raise_for_status()
                instants = [float(line.split()[1]) for line in group.collect("done", 60)]
                server_cpu += cpu_seconds(replica.pid) - cpu_before
                readers_cpu += sum(cpu_seconds(p.pid) for p in group.procs) - readers_before
                out.latencies_ms.append((max(instants) - answered) * 1e3)
            out.cpu_per_block = server_cpu / trials
            out.follower_cpu_per_block = readers_cpu / trials
            out.rss_after_mb = rss_mb(replica.pid)
        finally:
            group.close()
