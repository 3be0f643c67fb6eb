"""The revocation feed for service clients over HTTP: a page by cursor, and an SSE stream.

Contract in docs/architecture.md. Both need a registered confidential client
(HTTP Basic); the stream resumes after ``Last-Event-ID``. What the feed sends
is decided in :mod:`authmesh.server.feed`; this module parses and frames. Each
open stream is registered in ``ctx.hub.followers`` (which enforces the
per-client stream limit) for as long as its response runs.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from authmesh.server.context import ServerContext
from authmesh.server.errors import InvalidRequest
from authmesh.server.feed.access import authenticate_reader, claimed_reader
from authmesh.server.feed.followers import Follower, FollowerRegistry
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
    registry = ctx.hub.followers
    authorization = request.headers.get("authorization")
    claimed = claimed_reader(authorization)
    if claimed is not None:
        # A flood from one client is refused before any database read. This tells
        # a caller without the secret only that the client is at its limit.
        registry.check_room(claimed)
    client = await authenticate_reader(ctx, authorization)
    cursor = after
    if last_event_id:
        try:
            cursor = int(last_event_id)
        except ValueError:
            raise InvalidRequest("Last-Event-ID must be an integer cursor") from None
        if cursor < 0:
            raise InvalidRequest("Last-Event-ID must not be negative")
    peer = request.client
    follower = registry.open(  # 429 beyond the client's stream limit
        client_id=client.client_id,
        cursor=cursor,
        remote_addr=peer.host if peer else None,
        remote_port=peer.port if peer else None,
        replica=request.headers.get("authmesh-replica"),
        user_agent=request.headers.get("user-agent"),
    )
    feed = FeedStream(ctx, cursor, stop=request.is_disconnected)
    return FollowerResponse(
        _frames(ctx, feed, follower, get_metrics(request)),
        registry=registry,
        follower=follower,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class FollowerResponse(StreamingResponse):
    """A stream that leaves the follower registry when the response ends, however it ends.

    The generator's own ``finally`` is not enough: a client that hangs up before
    the first frame cancels a generator that never started, whose body never runs.
    """

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        registry: FollowerRegistry,
        follower: Follower,
        media_type: str,
        headers: dict[str, str],
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._registry = registry
        self._follower = follower

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._registry.close(self._follower)


async def _frames(
    ctx: ServerContext, feed: FeedStream, follower: Follower, metrics: ServerMetrics
) -> AsyncIterator[bytes]:
    """The stream as SSE frames, noted on ``follower`` as sent, and counted in ``metrics``.

    Events go out with the heartbeat that follows them in one write (a page at
    most): one socket write per stream per wake-up instead of two, which is
    most of a replica's work when a block reaches 1,000 open streams.
    """
    metrics.feed_streams.inc()
    position = metrics.followers.open(feed.cursor)
    try:
        yield b"retry: 1000\n\n"
        pending: list[bytes] = []
        events: list[int] = []
        heartbeat: int | None = None
        async for item in feed:
            if isinstance(item, Heartbeat):
                pending.append(_sse("heartbeat", item.to_json()))
                heartbeat = item.latest_cursor
                at = item.latest_cursor
            else:
                pending.append(_sse("revocation", item.to_json(), item.cursor))
                events.append(item.cursor)
                at = item.cursor
                if len(pending) < PAGE_SIZE:
                    continue
            yield b"".join(pending)
            pending.clear()
            # The positions move once the frames are handed over for sending.
            now = ctx.now()
            for cursor in events:
                follower.sent_event(cursor, now)
            events.clear()
            if heartbeat is not None:
                follower.sent_heartbeat(now, heartbeat)
                heartbeat = None
            metrics.followers.advance(position, at)
    finally:
        metrics.followers.close(position)
        metrics.feed_streams.dec()
