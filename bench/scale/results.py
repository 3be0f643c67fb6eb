"""The scale run's sections of ``bench/RESULTS.md``; the other parts are left as they are."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from bench.machine import git_commit, load_average
from bench.parts import PARTS
from bench.report import RESULTS, read_sections, render
from bench.scale.checks import KILL_WINDOW, percentile
from bench.scale.run import Outcome

__all__ = ["scale_markdown", "write_sections"]

_SECTION_ORDER = [*(p.name for p in PARTS), "scale", "scale_fanout", "scale_capacity"]


def write_sections(fresh: Mapping[str, str], path: Path = RESULTS) -> None:
    """Replace the sections in ``fresh``, keeping the header and every other section."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    header = text.split("<!-- part:", 1)[0]
    sections = read_sections(path)
    sections.update(fresh)
    path.write_text(render(header, sections, _SECTION_ORDER))


def stamp(seconds: float) -> str:
    """The line under a section title: when, which commit, how long, the load."""
    return (
        f"_{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, commit {git_commit()}, "
        f"{seconds:.0f} s; load average (1/5/15 min) at the end {load_average()}._"
    )


def scale_markdown(outcome: Outcome, seconds: float, plot: str) -> str:
    """The ``scale`` section."""
    a, plan = outcome.analysis, outcome.plan
    rows = [
        (kind, n, n / a.duration) for kind, n in sorted(a.grants.items(), key=lambda kv: -kv[1])
    ]
    total = sum(n for _, n, _ in rows)
    lines = [
        "## scale — 3 replicas behind HAProxy under mixed load, one SIGKILLed and restarted",
        "",
        stamp(seconds),
        "",
        f"{plan.replicas} `authmesh serve` replicas on one PostgreSQL schema with Redis "
        f"(rate limits, feed wake-ups), behind HAProxy (health checks on "
        f"`{outcome.health_path}`); {plan.services} SDK services (`ServiceAuth` following "
        f"the feed through HAProxy, {plan.services_per_process} per process); a driver "
        f"process with {plan.chains} refresh chains, {plan.sign_in_workers} sign-in and "
        f"{plan.cc_workers} client-credentials loops ({plan.think * 1000:.0f} ms pause "
        f"between requests) and a block every {plan.block_interval:.0f} s, for "
        f"{a.duration:.0f} s. Replica r{plan.replicas} is SIGKILLed at {plan.kill_at:.0f} s "
        f"and restarted at {plan.restart_at:.0f} s. Cheap Argon2 (the sign-ins measure the "
        "system, not the hash); everything on the same 2 cores.",
        "",
        f"![throughput and revocation latency over time]({plot})",
        "",
        "| grant | count | per second |",
        "| --- | ---: | ---: |",
        *(f"| {kind} | {n} | {rate:.1f} |" for kind, n, rate in rows),
        f"| all | {total} | {total / a.duration:.1f} |",
        "",
        f"Auth-server CPU over the load: {outcome.server_cpu:.1f} s for {total} grants "
        f"({outcome.server_cpu / max(total, 1) * 1e3:.1f} ms per grant, all replicas).",
        "",
        f"| block → last of {plan.services} services rejects the token | ms |",
        "| --- | ---: |",
        f"| blocks | {len(a.block_latencies_ms)} |",
        f"| median | {a.latency(0.5):.0f} |",
        f"| p99 (across the kill) | {a.latency(0.99):.0f} |",
        f"| max | {a.latency(1.0):.0f} |",
        f"| p99 outside the kill and restart windows | {a.latency(0.99, in_window=False):.0f} |",
        f"| max inside them | {a.latency(1.0, in_window=True):.0f} |",
        f"| median, *first* service | {_median(a.first_service_ms):.0f} |",
        f"| block *request sent* → last service, median | {_median(a.from_sent_ms):.0f} |",
        f"| block request sent → last service, p99 | {percentile(a.from_sent_ms, 0.99):.0f} |",
        "",
        "**Checks** (each one fails the run):",
        "",
        "- no refresh token lost, none usable twice: "
        + ", ".join(f"{name}: {n}/{plan.chains}" for name, n in a.checks.items()),
        f"- every block reached all {plan.services} services: "
        f"{len(a.block_latencies_ms)} of {len(a.block_latencies_ms)}",
        f"- client errors: {sum(a.failures.values())} failed attempts, "
        f"{a.failures_in_windows} of them within {KILL_WINDOW:.0f} s of the kill or restart, "
        "all retryable (502/503/504 or a connection error) and retried: "
        + (", ".join(f"{k} × {n}" for k, n in a.failures.items()) or "none"),
        f"- verdict: {'**passed**' if a.ok else '**FAILED**: ' + '; '.join(a.problems[:5])}",
        "",
        "How the run checks the promises: the driver keeps every refresh token it was "
        "answered, chain by chain, and retries a failed request with the same token (a "
        "refresh whose answer was lost with the replica is answered the same new token "
        "within the reuse grace). After the load each chain's last token must rotate, "
        "presenting it again must not yield a different token, and a token used more than "
        "the grace ago must be refused and end the session. Each service checks the "
        "blocked user's token after every feed event it applies and reports the instant "
        "of the first rejection; the figure is measured from the admin's block response "
        "(as in the `revocation` part), so it is 0 or negative when every service "
        "rejected the token before the admin had read the answer, which the balancer "
        "and a busy replica delay more than the feed; the figures from the request "
        "are always positive.",
    ]
    return "\n".join(lines) + "\n"


def _median(values: list[float]) -> float:
    return percentile(values, 0.5)
