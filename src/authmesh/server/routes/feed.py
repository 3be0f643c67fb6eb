"""The revocation feed for service clients over HTTP: a page by cursor, and an SSE stream.

Contract in docs/architecture.md. Both need a registered confidential client
(HTTP Basic); the stream resumes after ``Last-Event-ID``. What the feed sends
is decided in :mod:`authmesh.server.feed`; this module parses and frames.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from authmesh.server.errors import InvalidRequest
from authmesh.server.feed.access import authenticate_reader
from authmesh.server.feed.page import PAGE_SIZE, read_page
from authmesh.server.feed.stream import FeedStream, Heartbeat
from authmesh.server.metrics import ServerMetrics
from authmesh.server.routes.common import get_context, get_metrics

__all__ = ["router"]

router = APIRouter(tags=["revocation feed"])


@router.get("/revocations", summary="Revocation events after a cursor")
async def page(
    request: Request,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = PAGE_SIZE,
) -> JSONResponse:
    """Live events after ``after``, ascending by cursor."""
    ctx = get_context(request)
    await authenticate_reader(ctx, request.headers.get("authorization"))
    result = await read_page(ctx, after, limit)
    return JSONResponse(result.to_json(), headers={"Cache-Control": "no-store"})


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
    ctx = get_context(request)
    await authenticate_reader(ctx, request.headers.get("authorization"))
    cursor = after
    if last_event_id:
        try:
            cursor = int(last_event_id)
        except ValueError:
            raise InvalidRequest("Last-Event-ID must be an integer cursor") from None
        if cursor < 0:
            raise InvalidRequest("Last-Event-ID must not be negative")
    feed = FeedStream(ctx, cursor, stop=request.is_disconnected)
    return StreamingResponse(
        _frames(feed, get_metrics(request)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _frames(feed: FeedStream, metrics: ServerMetrics) -> AsyncIterator[bytes]:
    """The stream as SSE frames, counted as a follower (with its position) while open.

    Events go out with the heartbeat that follows them in one write (a page at
    most): one socket write per stream per wake-up instead of two, which is
    most of a replica's work when a block reaches 1,000 open streams.
    """
    metrics.feed_streams.inc()
    follower = metrics.followers.open(feed.cursor)
    try:
        yield b"retry: 1000\n\n"
        pending: list[bytes] = []
        async for item in feed:
            if isinstance(item, Heartbeat):
                pending.append(_sse("heartbeat", item.to_json()))
                position = item.latest_cursor
            else:
                pending.append(_sse("revocation", item.to_json(), item.cursor))
                position = item.cursor
                if len(pending) < PAGE_SIZE:
                    continue
            yield b"".join(pending)
            pending.clear()
            # The position moves once the frames are handed over for sending.
            metrics.followers.advance(follower, position)
    finally:
        metrics.followers.close(follower)
        metrics.feed_streams.dec()
