"""authmesh benchmarks: ``make bench`` (``python -m bench``) rewrites ``bench/RESULTS.md``.

Every part is a module with a ``run(budget)`` function (see :mod:`bench.parts`).
The rules every part follows (see :mod:`bench.harness`):

- every figure is the median over repeats with its spread (IQR and min–max);
- implementations compared with each other are timed round-robin, one batch
  each per repeat, the order rotating, so that noise hits them alike;
- ratios are taken per repeat against a reference measured in the same repeat;
- each part stops repeating when its time budget is spent; the whole run stays
  under ten minutes.

No test asserts a timing: these figures are for people, not for CI.
"""

from __future__ import annotations

__all__: list[str] = []
