"""The revocation feed for service clients: a page by cursor, and an SSE stream.

Contract in docs/architecture.md. Both need a registered confidential client
(HTTP Basic); the stream resumes after ``Last-Event-ID``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from authmesh.server.clients import ClientCredentials, authenticate_client, parse_client_credentials
from authmesh.server.core import AuthCore
from authmesh.server.errors import InvalidClient, InvalidRequest
from authmesh.server.routes.common import get_core, get_metrics
from authmesh.store import revocations

__all__ = ["router"]

router = APIRouter(tags=["revocation feed"])
_PAGE = 500


async def _service_client(request: Request, core: AuthCore) -> None:
    header = request.headers.get("authorization")
    if not header or not header.lower().startswith("basic "):
        raise InvalidClient("the revocation feed needs HTTP Basic client credentials")
    creds: ClientCredentials = parse_client_credentials(header, {})
    client = await authenticate_client(core, creds)
    if client.secret_hash is None:
        raise InvalidClient("the revocation feed is for confidential service clients")


@router.get("/revocations", summary="Revocation events after a cursor")
async def page(
    request: Request,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = _PAGE,
) -> JSONResponse:
    """Live events after ``after``, ascending by cursor."""
    core = get_core(request)
    await _service_client(request, core)
    now = core.now()
    async with core.db.transaction() as session:
        latest = await revocations.latest_cursor(session)
        events = await revocations.events_since(session, after, now=now, limit=limit)
    return JSONResponse(
        {
            "events": [e.to_json() for e in events],
            "next_cursor": events[-1].cursor if events else max(after, 0),
            "has_more": len(events) == limit,
            "latest_cursor": latest,
            "server_time": now,
        },
        headers={"Cache-Control": "no-store"},
    )


def _sse(event: str, data: object, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@router.get(
    "/revocations/stream",
    summary="Revocation events as Server-Sent Events",
    response_class=StreamingResponse,
)
async def stream(
    request: Request,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    last_event_id: Annotated[str | None, Header(max_length=30)] = None,
) -> StreamingResponse:
    """Every live event after the cursor, then new ones as they are written."""
    core = get_core(request)
    await _service_client(request, core)
    cursor = after
    if last_event_id:
        try:
            cursor = int(last_event_id)
        except ValueError:
            raise InvalidRequest("Last-Event-ID must be an integer cursor") from None
        if cursor < 0:
            raise InvalidRequest("Last-Event-ID must not be negative")
    metrics = get_metrics(request)
    return StreamingResponse(
        _events(core, request, cursor, metrics.feed_streams),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(
    core: AuthCore, request: Request, cursor: int, gauge: object
) -> AsyncIterator[bytes]:
    heartbeat = core.settings.feed_heartbeat
    gauge.inc()  # type: ignore[attr-defined]
    try:
        yield b"retry: 1000\n\n"
        while not core.hub.draining and not await request.is_disconnected():
            # Captured before the read: a wake-up for anything newer is never missed.
            seen = core.hub.latest
            events = await core.hub.tail.since(cursor, seen=seen, now=core.now(), limit=_PAGE)
            for event in events:
                yield _sse("revocation", event.to_json(), event.cursor)
                cursor = event.cursor
            if len(events) == _PAGE:
                continue
            yield _sse("heartbeat", {"latest_cursor": max(seen, cursor), "server_time": core.now()})
            await core.hub.wait(seen, heartbeat)
    finally:
        gauge.dec()  # type: ignore[attr-defined]
