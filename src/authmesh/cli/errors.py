"""Exit codes of the ``authmesh`` command, and the one mapping of errors to them.

| code | meaning |
| --- | --- |
| 0 | done; a token is valid, or decoded fine without verification |
| 1 | a token is invalid (or cannot even be decoded); an operation was refused |
| 2 | usage or configuration: a bad option, an unreadable key file, an unreachable URL |

Click already exits with 2 on a bad option; :func:`exit_code_for` gives the same
code to :class:`~authmesh.errors.OperatorError` so that a fault of the operator's
set-up always reads as one, and never as a traceback.
"""

from __future__ import annotations

import typer

from authmesh.errors import AuthmeshError, OperatorError

__all__ = ["EXIT_INVALID", "EXIT_OK", "EXIT_USAGE", "exit_code_for", "report_error"]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def exit_code_for(exc: AuthmeshError) -> int:
    """The exit status for an error authmesh raised on purpose."""
    return EXIT_USAGE if isinstance(exc, OperatorError) else EXIT_INVALID


def report_error(exc: AuthmeshError) -> int:
    """Print ``exc`` for a person on standard error (no traceback); return its exit status."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    typer.echo(f"authmesh: error: {message}", err=True)
    return exit_code_for(exc)
