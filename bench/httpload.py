"""``python -m bench.httpload``: a fixed-duration HTTP/1.1 load generator (``wrk``-like).

Reads a JSON spec on stdin and prints a JSON result. It runs in its own process
(so it never shares an interpreter with what it measures), opens ``connections``
keep-alive connections, each sending the next of ``requests`` (raw request
bytes, cycled, each connection starting at a different offset) as soon as the
previous answer is complete: a closed loop, as ``wrk`` does; optionally it stops
after ``total`` requests. Requests finished
during the first ``warmup`` seconds are not counted.

Kept free of authmesh imports so that it starts fast.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

__all__ = ["main", "run"]


async def _connection(
    host: str,
    port: int,
    requests: list[bytes],
    offset: int,
    start_counting: float,
    stop_at: float,
    latencies: list[float],
    statuses: dict[int, int],
    budget: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    n = len(requests)
    i = offset
    clock = time.perf_counter
    try:
        while True:
            sent = clock()
            if sent >= stop_at or budget[0] <= 0:
                break
            budget[0] -= 1
            writer.write(requests[i % n])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            if at < 0:
                raise RuntimeError("response without Content-Length")
            end = lower.index(b"\r\n", at + 2)
            length = int(lower[at + 17 : end])
            if length:
                await reader.readexactly(length)
            done = clock()
            statuses[0] = statuses.get(0, 0) + 1  # every answer, warm-up included
            if sent >= start_counting:
                latencies.append(done - sent)
                statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    requests = [r.encode("latin-1") for r in spec["requests"]]
    connections = int(spec.get("connections", 16))
    warmup = float(spec.get("warmup", 0.5))
    duration = float(spec["duration"])
    now = time.perf_counter()
    start_counting = now + warmup
    stop_at = start_counting + duration
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    step = max(1, len(requests) // connections)
    # Optional cap on the requests sent in all (0: none), shared by the connections.
    budget = [int(spec.get("total", 0)) or 1 << 62]
    await asyncio.gather(
        *(
            _connection(
                spec.get("host", "127.0.0.1"),
                int(spec["port"]),
                requests,
                c * step,
                start_counting,
                stop_at,
                latencies,
                statuses,
                budget,
            )
            for c in range(connections)
        )
    )
    elapsed = time.perf_counter() - start_counting
    latencies.sort()
    count = len(latencies)
    answered = statuses.pop(0, 0)

    def pct(p: float) -> float:
        return latencies[min(count - 1, int(p * count))] * 1e3 if count else float("nan")

    return {
        "count": count,
        "elapsed": elapsed,
        "rps": count / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "answered": answered,
        "statuses": {str(k): v for k, v in statuses.items()},
    }


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one load window (uvloop when installed) and summarise it."""
    try:
        import uvloop

        return uvloop.run(_run(spec))
    except ImportError:
        return asyncio.run(_run(spec))


def main() -> None:
    """Spec on stdin, result on stdout."""
    print(json.dumps(run(json.load(sys.stdin))))


if __name__ == "__main__":
    main()
