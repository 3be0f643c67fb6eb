"""The token inspector: read a token like jwt.io, say what it leaks and why a verifier rejects it.

Typical use::

    seen = inspect_token(token)  # never raises: faults become seen.problems
    verdict = judge(token, seen, KeySet([key]), VerifyPolicy(...), time.time())

The ``authmesh token decode`` command (:mod:`authmesh.inspector.command`) is
this package's face on the command line; importing the package itself loads
neither Typer, Rich nor httpx.
"""

from __future__ import annotations

from authmesh.inspector.checks import NUMERIC_DATE_CLAIMS
from authmesh.inspector.findings import Inspection, Problem, SensitiveClaim
from authmesh.inspector.reading import inspect_token
from authmesh.inspector.verdict import Status, Verdict, judge

__all__ = [
    "NUMERIC_DATE_CLAIMS",
    "Inspection",
    "Problem",
    "SensitiveClaim",
    "Status",
    "Verdict",
    "inspect_token",
    "judge",
]
