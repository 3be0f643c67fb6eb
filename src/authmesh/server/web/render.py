"""Rendering pages: Jinja2 with autoescaping, and the headers every page carries."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

__all__ = ["STATIC_DIR", "origin_of", "page"]

STATIC_DIR = Path(__file__).parent / "static"


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("authmesh.server.web", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        # The templates ship with the package: no stat of their files on every page.
        auto_reload=False,
    )
    env.globals["static"] = lambda name: f"/static/{name}"
    env.filters["isotime"] = isotime
    return env


def isotime(epoch: float, sep: str = "T") -> str:
    """An epoch time as ISO 8601 UTC to the second (``sep`` between date and time)."""
    moment = datetime.fromtimestamp(epoch, tz=UTC).replace(microsecond=0)
    return moment.isoformat(sep=sep).replace("+00:00", "Z" if sep == "T" else " UTC")


def origin_of(uri: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URI, for a CSP source list; else ``None``."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _csp(form_targets: Iterable[str], *, scripts: bool = False) -> str:
    # A form's redirect counts against form-action in browsers: allow exactly the
    # origin the answer of this form is allowed to go to.
    targets = " ".join(["'self'", *sorted(set(form_targets))])
    # A page that enhances itself loads this server's own script files, never inline.
    script = "script-src 'self'; connect-src 'self'; " if scripts else ""
    return (
        f"default-src 'none'; {script}style-src 'self'; img-src 'self'; "
        f"form-action {targets}; frame-ancestors 'none'; base-uri 'none'"
    )


def page(
    template: str,
    *,
    status_code: int = 200,
    form_targets: Iterable[str] = (),
    scripts: bool = False,
    **context: Any,
) -> HTMLResponse:
    """A rendered page that is never cached or framed and runs no script (with ``scripts``,
    only script files of this server)."""
    html = _environment().get_template(template).render(**context)
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={
            "Cache-Control": "no-store",
            "Pragma": "no-cache",
            "Content-Security-Policy": _csp(form_targets, scripts=scripts),
        },
    )
