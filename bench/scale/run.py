"""One scale run: the cluster, the driver process, a replica killed and restarted."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.scale.checks import Analysis, analyse
from bench.scale.cluster import (
    ADMIN,
    AUDIENCE,
    LOAD_CLIENT,
    PUBLIC_CLIENT,
    cluster,
)

__all__ = ["Outcome", "Plan", "run"]

_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Plan:
    """The shape of a run; times in seconds from the start of the load."""

    replicas: int = 3
    services: int = 20
    services_per_process: int = 10
    duration: float = 60.0
    kill_at: float = 20.0
    restart_at: float = 35.0
    chains: int = 20
    sign_in_workers: int = 2
    cc_workers: int = 2
    think: float = 0.02
    block_interval: float = 1.0
    users: int = 200
    refresh_reuse_grace: float = 5.0


@dataclass
class Outcome:
    """The analysis, the raw events and the setup's timings."""

    plan: Plan
    analysis: Analysis
    events: list[tuple[str, float, str]]
    setup_seconds: float
    health_path: str
    server_cpu: float


def _driver_spec(plan: Plan, url: str, secrets: dict[str, str], victims: int) -> dict[str, Any]:
    return {
        "url": url,
        "audience": AUDIENCE,
        "public_client": PUBLIC_CLIENT,
        "feed_clients": {
            name: secret for name, secret in secrets.items() if name.startswith("svc-")
        },
        "load_client": LOAD_CLIENT,
        "load_secret": secrets[LOAD_CLIENT],
        "admin": list(ADMIN),
        "users": plan.users,
        "victims": victims,
        "services": plan.services,
        "services_per_process": plan.services_per_process,
        "duration": plan.duration,
        "chains": plan.chains,
        "sign_in_workers": plan.sign_in_workers,
        "cc_workers": plan.cc_workers,
        "think": plan.think,
        "block_interval": plan.block_interval,
        "refresh_reuse_grace": plan.refresh_reuse_grace,
    }


def run(plan: Plan) -> Outcome:
    """Start everything, drive the load with one kill and restart, analyse."""
    started = time.monotonic()
    victims = int(plan.duration / plan.block_interval) + 5
    with cluster(
        replicas=plan.replicas,
        users=plan.users,
        victims=victims,
        refresh_reuse_grace=plan.refresh_reuse_grace,
        feed_clients=plan.services,
    ) as c:
        driver = subprocess.Popen(
            [sys.executable, "-m", "bench.scale.driver"],
            cwd=_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert driver.stdin is not None and driver.stdout is not None
        try:
            driver.stdin.write(json.dumps(_driver_spec(plan, c.url, c.secrets, victims)) + "\n")
            driver.stdin.flush()
            ready = driver.stdout.readline()
            if not ready.startswith('{"ready"'):
                raise RuntimeError(f"the driver did not start: {ready!r}")
            setup = time.monotonic() - started
            cpu0 = sum(_cpu(r.pid) for r in c.replicas)
            driver.stdin.write("go\n")
            driver.stdin.flush()
            go = time.monotonic()
            victim = len(c.replicas) - 1
            cpu_killed = _schedule(c, victim, go, plan)
            out = driver.stdout.readline()
            driver.wait(timeout=60)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait()
            driver.stdin.close()
            driver.stdout.close()
        server_cpu = sum(_cpu(r.pid) for r in c.replicas) - cpu0 + cpu_killed
        if not out.startswith('{"result"'):
            raise RuntimeError(f"the driver failed: {out!r}")
        record = json.loads(out)["result"]
        analysis = analyse(record, c.events, plan.services)
        return Outcome(plan, analysis, list(c.events), setup, c.health, server_cpu)


def _schedule(c: Any, victim: int, go: float, plan: Plan) -> float:
    """Kill replica ``victim`` at ``kill_at``, restart it at ``restart_at``; the CPU it
    had used since the load began (lost with the process otherwise)."""
    done = threading.Event()
    used: list[float] = []

    def at(seconds: float) -> None:
        time.sleep(max(0.0, go + seconds - time.monotonic()))

    def script() -> None:
        try:
            at(plan.kill_at)
            used.append(_cpu(c.replicas[victim].pid))
            c.kill(victim)
            at(plan.restart_at)
            c.restart(victim)
        finally:
            done.set()

    thread = threading.Thread(target=script, daemon=True)
    thread.start()
    done.wait(plan.restart_at + 90)
    return used[0] if used else 0.0


def _cpu(pid: int) -> float:
    from bench.servers import cpu_seconds

    try:
        return cpu_seconds(pid)
    except FileNotFoundError:
        return 0.0
