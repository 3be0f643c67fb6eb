"""``/admin``: the admin console's signing keys and audit trail pages (role ``admin``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from authmesh.server import audit as audit_trail
from authmesh.server import signing_keys
from authmesh.server.audit_export import FORMATS, export
from authmesh.server.console.live import live_view
from authmesh.server.routes.common import get_context, no_store_json
from authmesh.server.routes.console_common import (
    AdminForm,
    AdminUser,
    actor_info,
    bounded_int,
    console_page,
    refused_page,
)

__all__ = ["router"]

router = APIRouter(tags=["consoles"], include_in_schema=False)

_PAGE = 50
_EXPORT_MAX = 10_000
_KEY_STATES = {"pending": "next", "active": "active", "retired": "retiring", "expired": "expired"}


@router.get("/admin/console/keys")
async def keys(request: Request, admin: AdminUser) -> Response:
    """The signing keys with their state."""
    found = await signing_keys.list_keys(get_context(request))
    done = "A new key is published; it signs once the publish-ahead delay has passed."
    return console_page(
        request,
        "console/admin/keys.html",
        admin,
        keys=found,
        states=_KEY_STATES,
        done=done if request.query_params.get("done") == "rotated" else None,
    )


@router.post("/admin/console/keys/rotate")
async def rotate_key(request: Request, posted: AdminForm) -> Response:
    """Rotate now."""
    admin, _form = posted
    await signing_keys.rotate_now(get_context(request), info=actor_info(request, admin))
    return RedirectResponse("/admin/console/keys?done=rotated", 303)


def _epoch(value: str) -> float | None:
    """A ``datetime-local`` value (taken as UTC) or an epoch number; ``None`` when blank or bad."""
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        return number if math.isfinite(number) and 0 <= number <= 1e11 else None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _query(
    action: str, subject: str, client: str, since: str, until: str, limit: int, before: int | None
) -> audit_trail.AuditQuery:
    return audit_trail.AuditQuery(
        action=action[:50] or None,
        subject=subject[:150] or None,
        client_id=client[:100] or None,
        since=_epoch(since[:40]),
        until=_epoch(until[:40]),
        before_id=before,
        limit=limit,
    )


@router.get("/admin/console/audit")
async def audit(
    request: Request,
    admin: AdminUser,
    action: str = "",
    subject: str = "",
    client: str = "",
    since: str = "",
    until: str = "",
    before: str = "",
) -> Response:
    """The audit trail, filtered, newest first, a page at a time."""
    older_than = bounded_int(before, 0, 1, 2**62) or None
    what = _query(action, subject, client, since, until, _PAGE, older_than)
    entries = await audit_trail.query(get_context(request), what)
    filters = {
        "action": action,
        "subject": subject,
        "client": client,
        "since": since,
        "until": until,
    }
    return console_page(
        request,
        "console/admin/audit.html",
        admin,
        entries=entries,
        filters=filters,
        older=entries[-1].id if len(entries) == _PAGE else None,
    )


@router.get("/admin/console/audit/export")
async def audit_export(
    request: Request,
    admin: AdminUser,
    format: str = "csv",
    action: str = "",
    subject: str = "",
    client: str = "",
    since: str = "",
    until: str = "",
) -> Response:
    """The filtered audit trail as a CSV or JSON lines file (newest first)."""
    if format not in FORMATS:
        return refused_page(request, "Export as csv or jsonl.", status_code=400)
    what = _query(action, subject, client, since, until, _EXPORT_MAX, None)
    entries = await audit_trail.query(get_context(request), what)
    media_type, extension = FORMATS[format]
    return Response(
        export(entries, format),
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="authmesh-audit.{extension}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/admin/console/live")
async def live(request: Request, admin: AdminUser) -> Response:
    """Revocation, live: the page (a snapshot; its script refreshes it every second)."""
    return console_page(
        request,
        "console/admin/live.html",
        admin,
        scripts=True,
        view=await live_view(get_context(request)),
    )


@router.get("/admin/console/live.json")
async def live_json(request: Request, _admin: AdminUser) -> Response:
    """What the live page shows, as JSON (read by its script once a second)."""
    return no_store_json(await live_view(get_context(request)))
