"""Rendering pages: Jinja2 with autoescaping, and the headers every page carries."""

from __future__ import annotations

from collections.abc import Iterable
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
    return env


def origin_of(uri: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URI, for a CSP source list; else ``None``."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _csp(form_targets: Iterable[str]) -> str:
    # A form's redirect counts against form-action in browsers: allow exactly the
    # origin the answer of this form is allowed to go to.
    targets = " ".join(["'self'", *sorted(set(form_targets))])
    return (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        f"form-action {targets}; frame-ancestors 'none'; base-uri 'none'"
    )


def page(
    template: str,
    *,
    status_code: int = 200,
    form_targets: Iterable[str] = (),
    **context: Any,
) -> HTMLResponse:
    """A rendered page that is never cached or framed and runs no script."""
    html = _environment().get_template(template).render(**context)
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={
            "Cache-Control": "no-store",
            "Pragma": "no-cache",
            "Content-Security-Policy": _csp(form_targets),
        },
    )
