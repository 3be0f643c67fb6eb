"""The revocation feed for service clients over HTTP: a page by cursor, and an SSE stream.

Contract in docs/architecture.md. Both need a registered confidential client
(HTTP Basic); the stream resumes after ``Last-Event-ID``. What the feed sends
is decided in :mod:`authmesh.server.feed`; this module parses and frames. Each
open stream is registered in ``ctx.hub.followers`` (which enforces the
per-client stream limit) for as long as its response runs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from authmesh.revocation import RevocationEvent
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


@functools.lru_cache(maxsize=4096)
def _event_frame(event: RevocationEvent) -> bytes:
    """An event's SSE frame, encoded once and shared by every stream that sends it.

    A block reaches every caught-up stream of the process with the same event
    object (the feed's shared tail); keyed by the event's value, the cache can
    never hand one app's frame to another's different event. As many entries
    as the tail keeps events.
    """
    return _sse("revocation", event.to_json(), event.cursor)


def _heartbeat_frame(beat: Heartbeat) -> bytes:
    """A heartbeat's SSE frame: the bytes ``_sse`` would write, without a JSON encoder.

    Its two numbers are written as JSON writes them (``repr`` of an int or a
    finite float); every stream writes one per wake-up, so this is on the
    fan-out's path.
    """
    return (
        f'event: heartbeat\ndata: {{"latest_cursor":{beat.latest_cursor!r},'
        f'"server_time":{beat.server_time!r}}}\n\n'
    ).encode()


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
    gone = ClientGone(request)
    feed = FeedStream(ctx, cursor, stop=gone)
    return FollowerResponse(
        _frames(ctx, feed, follower, get_metrics(request)),
        registry=registry,
        follower=follower,
        gone=gone,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class ClientGone:
    """ "Has the client hung up?", asked by a stream after every quiet heartbeat interval.

    Starlette's ``StreamingResponse`` already listens for the disconnect while it
    streams (ASGI servers before spec 2.4, uvicorn among them) and ends the
    stream when it comes. That listener reads through :meth:`watch`, so the
    answer here is a flag, not a fresh ``request.is_disconnected()`` (a cancel
    scope and a cancelled read each time: most of an idle replica's CPU with
    1,000 streams open). Without such a listener it asks the request.
    """

    def __init__(self, request: Request) -> None:
        self._request = request
        self._listened = False
        self.gone = False

    def watch(self, receive: Receive) -> Receive:
        """``receive``, noting the disconnect it returns."""

        async def watched() -> Message:
            self._listened = True
            message = await receive()
            if message["type"] == "http.disconnect":
                self.gone = True
            return message

        return watched

    async def __call__(self) -> bool:
        if self.gone or self._listened:
            return self.gone
        return await self._request.is_disconnected()


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
        gone: ClientGone,
        media_type: str,
        headers: dict[str, str],
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._registry = registry
        self._follower = follower
        self._gone = gone

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, self._gone.watch(receive), send)
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
                pending.append(_heartbeat_frame(item))
                heartbeat = item.latest_cursor
                at = item.latest_cursor
            else:
                pending.append(_event_frame(item))
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
