"""``python -m bench.dpop_instructions [ALG ...]``: part ``dpop`` counted in CPU instructions.

On a shared machine the wall-clock ratio of part ``dpop`` drifts with the
neighbours' load. Instructions do not: this runs the same two cases (the proof's
signature check, and ``ProofChecker.check`` of the same proofs) under valgrind's
callgrind, counting only inside each case's loop, and prints instructions per
call and their ratio. Instructions are not time (the Python around the signature
retires fewer instructions per cycle than the signature's assembly), so this is a
load-free view of the overhead, not the target's figure. Needs ``valgrind``; a
few minutes per algorithm.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import subprocess
import sys
import tempfile

from bench import dpop

__all__ = ["main"]

_CALLS = 1000
_CASES = ("empty", "signature", "request check")


def _inner(alg: str) -> None:
    """Run each case ``_CALLS`` times, each inside its own ``functools.reduce`` call."""
    cases = dict(dpop.cases(alg, pool=_CALLS + 1))
    cases["empty"] = lambda: None
    for name in _CASES:
        fn = cases[name]
        fn()  # the first call of each case outside the count (the header memo, the ath)
        functools.reduce(lambda _acc, _i: fn(), range(_CALLS), None)


def _count(alg: str) -> list[int]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=functools_reduce",
                "--dump-after=functools_reduce",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "bench.dpop_instructions",
                "--inner",
                alg,
            ],
            check=True,
            capture_output=True,
        )
        dumps = sorted(glob.glob(out + ".*"), key=lambda p: int(p.rsplit(".", 1)[1]))
        totals = []
        for path in dumps:
            with open(path) as f:
                found = re.search(r"^(?:summary|totals): (\d+)", f.read(), re.MULTILINE)
            if found is None:
                raise RuntimeError(f"no instruction total in {path}")
            totals.append(int(found[1]))
    if len(totals) != len(_CASES):
        raise RuntimeError(f"expected {len(_CASES)} dumps, got {len(totals)}")
    return totals


def main(argv: list[str]) -> int:
    """Count the algorithms in ``argv`` (default: part ``dpop``'s)."""
    if argv[:1] == ["--inner"]:
        _inner(argv[1])
        return 0
    for alg in argv or dpop.ALGORITHMS:
        empty, signature, check = (t / _CALLS for t in _count(alg))
        sig, req = signature - empty, check - empty
        print(
            f"{alg:>6}: signature {sig / 1000:.1f}k instructions, request check "
            f"{req / 1000:.1f}k, ratio {req / sig:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
