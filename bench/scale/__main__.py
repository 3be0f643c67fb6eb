"""``python -m bench.scale [--part scale|fanout|capacity] [--no-write]``: ``make scale``.

Runs the replicas-behind-HAProxy run (:mod:`bench.scale.run`), the fan-out
measurement (:mod:`bench.scale.fanout`) and the database cost per grant
(:mod:`bench.scale.capacity`), prints their figures, draws ``docs/scale.png``
and writes the ``scale``, ``scale_fanout`` and ``scale_capacity`` sections of
``bench/RESULTS.md`` (the other sections are kept). Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from bench.scale import capacity
from bench.scale.checks import percentile
from bench.scale.fanout import TARGET_P99_MS, FanOut, measure
from bench.scale.haproxy import haproxy_path
from bench.scale.plot import draw
from bench.scale.results import scale_markdown, stamp, write_sections
from bench.scale.run import Outcome, Plan, run

__all__ = ["main"]

_ROOT = Path(__file__).resolve().parents[2]
PLOT = _ROOT / "docs" / "scale.png"


def _scale(args: argparse.Namespace, fresh: dict[str, str]) -> bool:
    started = time.monotonic()
    plan = Plan(duration=args.duration, kill_at=args.duration / 3, restart_at=args.duration * 0.6)
    outcome: Outcome = run(plan)
    a = outcome.analysis
    print(f"setup {outcome.setup_seconds:.0f} s; load {a.duration:.0f} s")
    for kind, n in a.grants.most_common():
        print(f"  {kind:20} {n:7} ({n / a.duration:.1f}/s)")
    print(
        f"blocks: {len(a.block_latencies_ms)}, last of {plan.services} services: "
        f"median {a.latency(0.5):.0f} ms, p99 {a.latency(0.99):.0f} ms, max {a.latency(1):.0f} ms "
        f"from the response; p99 {percentile(a.from_sent_ms, 0.99):.0f} ms from the request"
    )
    print(f"failed attempts: {dict(a.failures)} ({a.failures_in_windows} in the windows)")
    print(f"checks: {a.checks}")
    for problem in a.problems:
        print(f"PROBLEM: {problem}")
    if not args.no_write:
        draw(a, a.windows, PLOT)
        print(f"drew {PLOT.relative_to(_ROOT)}")
    fresh["scale"] = scale_markdown(outcome, time.monotonic() - started, "../docs/" + PLOT.name)
    return a.ok


def _cpus(cpus: set[int]) -> str:
    return ", ".join(str(c) for c in sorted(cpus))


def _fanout_markdown(f: FanOut, seconds: float) -> str:
    met = f.p99 <= TARGET_P99_MS
    if f.server_cpus:
        where = (
            f"the replica pinned to CPU {_cpus(f.server_cpus)}, the followers and the driver "
            f"to CPU {_cpus(f.follower_cpus)} (`os.sched_setaffinity`; PostgreSQL, Redis and "
            "anything else on the machine are not pinned)"
        )
    else:
        where = "nothing pinned: the followers share the replica's CPUs"
    return (
        f"## scale_fanout — one replica, {f.followers:,} revocation-feed followers\n\n"
        f"{stamp(seconds)}\n\n"
        f"One `authmesh serve` process (PostgreSQL, Redis) with {f.followers:,} open SSE "
        f"streams, read by {f.processes} follower process(es) with one `epoll` loop over "
        f"raw sockets (bench/scale/followers.py); {where}. Per trial the admin blocks a "
        "user and the figure runs from the block's response to the instant the last "
        "follower has the event.\n\n"
        "| figure | value |\n| --- | ---: |\n"
        f"| trials | {len(f.latencies_ms)} |\n"
        f"| block → last follower, median | {percentile(f.latencies_ms, 0.5):.0f} ms |\n"
        f"| p99 | {f.p99:.0f} ms |\n"
        f"| max | {max(f.latencies_ms):.0f} ms |\n"
        f"| opening all streams | {f.open_seconds:.1f} s |\n"
        f"| server RSS before the streams | {f.rss_before_mb:.1f} MB |\n"
        f"| server RSS with them | {f.rss_after_mb:.1f} MB |\n"
        f"| memory per follower (RSS delta / followers) | **{f.kb_per_follower:.1f} KB** |\n"
        f"| server CPU, streams open and idle (heartbeats every 2 s) | "
        f"{f.idle_cpu_per_second * 1e3:.0f} ms per second |\n"
        "| server CPU per block, from its request to the last follower (the block's "
        f"request + fan-out) | {f.cpu_per_block * 1e3:.0f} ms "
        f"({f.cpu_per_block * 1e6 / f.followers:.0f} µs per follower) |\n"
        f"| follower process CPU per block (reading {f.followers:,} sockets) | "
        f"{f.follower_cpu_per_block * 1e3:.0f} ms |\n\n"
        f"**Target** (p99 ≤ {TARGET_P99_MS:.0f} ms): "
        f"{'met' if met else 'NOT met'} — p99 {f.p99:.0f} ms.\n\n"
        "The server's CPU per block is the floor of the figure: one event loop wakes "
        "every stream and writes the event to each in turn (one socket write per stream, "
        "the frame encoded once for all; src/authmesh/server/routes/feed.py). Above it, "
        "the time the replica waits for its core: PostgreSQL, Redis and any other work "
        "on the machine (see the load average) compete with it, which is what sets the "
        "tail when the machine is busy.\n"
    )


def _fanout(args: argparse.Namespace, fresh: dict[str, str]) -> bool:
    started = time.monotonic()
    f = measure(followers=args.followers, trials=args.trials, pinned=not args.no_pin)
    print(
        f"fan-out to {f.followers}: median {percentile(f.latencies_ms, 0.5):.0f} ms, "
        f"p99 {f.p99:.0f} ms, max {max(f.latencies_ms):.0f} ms; "
        f"{f.kb_per_follower:.1f} KB per follower "
        f"(RSS {f.rss_before_mb:.1f} → {f.rss_after_mb:.1f} MB); server CPU idle "
        f"{f.idle_cpu_per_second * 1e3:.0f} ms/s, per block {f.cpu_per_block * 1e3:.0f} ms; "
        f"followers' CPU per block {f.follower_cpu_per_block * 1e3:.0f} ms; "
        f"pinned: server {sorted(f.server_cpus)}, followers {sorted(f.follower_cpus)}"
    )
    fresh["scale_fanout"] = _fanout_markdown(f, time.monotonic() - started)
    return True


def main(argv: list[str] | None = None) -> int:
    """Run the parts; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--part", choices=["scale", "fanout", "capacity"], action="append")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--followers", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=50, help="fan-out blocks")
    parser.add_argument(
        "--no-pin", action="store_true", help="fan-out: leave the replica and followers unpinned"
    )
    parser.add_argument("--no-write", action="store_true", help="keep RESULTS.md and the plot")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if haproxy_path() is None:
        print("haproxy is not installed: apt-get install haproxy", file=sys.stderr)
        return 2
    parts = args.part or ["scale", "fanout", "capacity"]
    fresh: dict[str, str] = {}
    ok = True
    if "scale" in parts:
        ok = _scale(args, fresh) and ok
    if "fanout" in parts:
        ok = _fanout(args, fresh) and ok
    if "capacity" in parts:
        started = time.monotonic()
        section = capacity.markdown(*capacity.measure(), time.monotonic() - started)
        print(section)
        fresh["scale_capacity"] = section
    if not args.no_write:
        write_sections(fresh)
        print("wrote bench/RESULTS.md")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
