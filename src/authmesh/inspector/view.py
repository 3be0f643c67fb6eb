"""How ``authmesh token decode`` shows an inspected token: Rich text, or one JSON object."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from authmesh.inspector.checks import NUMERIC_DATE_CLAIMS
from authmesh.inspector.findings import Inspection
from authmesh.inspector.humanize import date_phrase, printable, show_value, utc
from authmesh.inspector.verdict import Verdict

__all__ = ["render", "to_json"]

_MAX_RAW_TEXT = 2000
_NOT_CHECKED = "revocation not checked"


def _is_date(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _members(title: str, members: dict[str, Any], now: float, *, dates: bool) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        show_header=False,
        box=None,
        padding=(0, 1, 0, 2),
    )
    table.add_column("name", style="cyan", no_wrap=True)
    table.add_column("value", overflow="fold")
    if not members:
        table.add_row("", Text("(empty)", style="dim"))
    for name, value in members.items():
        cell = Text(show_value(value))
        if dates and name in NUMERIC_DATE_CLAIMS and _is_date(value):
            cell.append(f"  {utc(value)}, {date_phrase(name, value, now)}", style="dim")
        table.add_row(Text(printable(str(name))), cell)
    return table


def _raw(console: Console, title: str, text: str | None) -> None:
    console.print(Text(title, style="bold"))
    if text is None:
        console.print(Text("  (cannot be decoded)", style="dim"))
    else:
        shown = text if len(text) <= _MAX_RAW_TEXT else text[:_MAX_RAW_TEXT] + "…"
        console.print(Text("  " + printable(shown)))


def render(console: Console, seen: Inspection, verdict: Verdict, now: float) -> None:
    """Print header, payload, signature size, warnings and the verdict for a person."""
    if seen.header is not None:
        console.print(_members("Header", seen.header, now, dates=False))
    elif seen.segments:
        _raw(console, "Header (not a JSON object)", seen.header_text)
    if seen.payload is not None:
        console.print(_members("Payload", seen.payload, now, dates=True))
    elif seen.segments:
        _raw(console, "Payload (not a JSON object)", seen.payload_text)
    if seen.signature_length is not None:
        console.print(Text.assemble(("Signature", "bold"), f"  {seen.signature_length} bytes"))
    for problem in seen.problems:
        console.print(Text(f"problem: {printable(problem.message)}", style="yellow"))
    for claim in seen.sensitive:
        where = "header member" if claim.location == "header" else "claim"
        text = f"warning: {where} {printable(claim.path)!r} {claim.message}"
        console.print(Text(text, style="yellow"))
    console.print()
    console.print(_verdict_line(verdict))
    if verdict.hint and verdict.reason != "malformed":  # its problems are listed above
        console.print(Text(f"hint: {printable(verdict.hint)}"))
    if verdict.status == "valid" and verdict.unchecked:
        options = {"iss": "--issuer", "aud": "--audience", "typ": "--type"}
        missing = ", ".join(f"{name} ({options[name]})" for name in verdict.unchecked)
        console.print(Text(f"not checked: {missing}", style="dim"))
    if verdict.status == "valid":
        console.print(_revocation_line(verdict))


def _revocation_line(verdict: Verdict) -> Text:
    if verdict.introspected_at is None:
        return Text(
            f"{_NOT_CHECKED}: give --introspect URL, --client-id and --client-secret",
            style="yellow",
        )
    return Text(f"revocation checked: active at {printable(verdict.introspected_at)}", style="dim")


def _verdict_line(verdict: Verdict) -> Text:
    if verdict.status == "valid":
        return Text.assemble(
            ("VALID", "bold green"), f"  signed by key {verdict.kid} ({verdict.alg})"
        )
    if verdict.status == "unverified":
        return Text.assemble(
            ("NOT VERIFIED", "bold yellow"),
            "  decoded only; give --jwks URL|FILE or --key FILE to verify",
        )
    return Text.assemble(
        ("INVALID", "bold red"), f": {verdict.reason}: {printable(verdict.message or '')}"
    )


def to_json(seen: Inspection, verdict: Verdict, now: float) -> dict[str, Any]:
    """The whole inspection as one JSON-ready object, for ``--json``."""
    payload = seen.payload or {}
    dates = {
        name: {
            "value": payload[name],
            "utc": utc(payload[name]),
            "relative": date_phrase(name, payload[name], now),
        }
        for name in NUMERIC_DATE_CLAIMS
        if name in payload and _is_date(payload[name])
    }
    return {
        "header": seen.header,
        "payload": seen.payload,
        "header_text": seen.header_text,
        "payload_text": seen.payload_text,
        "signature_length": seen.signature_length,
        "segments": seen.segments,
        "dates": dates,
        "problems": [{"code": p.code, "part": p.part, "message": p.message} for p in seen.problems],
        "sensitive_claims": [
            {"location": c.location, "path": c.path, "category": c.category, "message": c.message}
            for c in seen.sensitive
        ],
        "verdict": {
            "status": verdict.status,
            "valid": verdict.status == "valid",
            "reason": verdict.reason,
            "message": verdict.message,
            "hint": verdict.hint,
            "kid": verdict.kid,
            "alg": verdict.alg,
            "unchecked": list(verdict.unchecked),
        },
        "revocation": _revocation(verdict),
    }


def _revocation(verdict: Verdict) -> dict[str, Any]:
    """Whether the issuer was asked if the token is still active, and its answer."""
    if verdict.introspected_at is None:
        return {"checked": False, "active": None, "endpoint": None, "message": _NOT_CHECKED}
    active = verdict.reason != "revoked"
    return {
        "checked": True,
        "active": active,
        "endpoint": verdict.introspected_at,
        "message": "active at the introspection endpoint"
        if active
        else "not active at the introspection endpoint: revoked",
    }
