"""The scale run drawn: grants per second and revocation latency, the kill marked."""

from __future__ import annotations

from pathlib import Path

from bench.scale.checks import Analysis

__all__ = ["draw"]

_LABELS = {
    "refresh_token": "refresh",
    "password": "sign-in (password)",
    "client_credentials": "client credentials",
}


def draw(analysis: Analysis, events: list[tuple[str, float, float]], path: Path) -> None:
    """Save a PNG: throughput over time above, block → last service below.

    ``events`` are ``(label, seconds into the run, seconds into the run)``:
    the kill and restart instants and the end of each one's window.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, dpi=110)
    seconds = max((len(v) for v in analysis.per_second.values()), default=0)
    xs = list(range(seconds))
    for kind, label in _LABELS.items():
        if kind in analysis.per_second:
            top.plot(xs, analysis.per_second[kind][:seconds], label=label, linewidth=1.4)
    top.set_ylabel("grants per second")
    top.set_title("3 replicas behind HAProxy, 20 services: one replica SIGKILLed, then restarted")
    top.grid(alpha=0.3)

    at = [t for t, _ in analysis.block_latencies_ms]
    ms = [v for _, v in analysis.block_latencies_ms]
    bottom.plot(at, ms, "o-", markersize=3, linewidth=0.8, color="tab:purple")
    bottom.set_ylabel("block → last of 20 services (ms)")
    bottom.set_xlabel("seconds into the run")
    bottom.grid(alpha=0.3)

    for axis in (top, bottom):
        for label, start, end in events:
            color = "tab:red" if label.startswith("kill") else "tab:green"
            axis.axvline(start, color=color, linestyle="--", linewidth=1.2)
            axis.axvspan(start, end, color=color, alpha=0.08)
    for label, start, _end in events:
        top.annotate(
            label, (start, 1), xycoords=("data", "axes fraction"), xytext=(3, -12),
            textcoords="offset points", fontsize=8,
        )  # fmt: skip
    top.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
