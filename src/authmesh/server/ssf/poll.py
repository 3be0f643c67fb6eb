"""Poll delivery (RFC 8936): acknowledge what the receiver got, hand out what is pending.

A SET stays in the outbox until acknowledged (``ack``) or refused (``setErrs``),
so a receiver that restarts is handed everything it had not acknowledged. With
nothing pending and ``returnImmediately`` false, the request is held (long
polling, RFC 8936 §2.1) until a revocation wakes the feed hub or
``ssf_poll_wait`` passes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from authmesh.server.context import ServerContext
from authmesh.server.errors import InvalidRequest, NotFound
from authmesh.store import ssf as ssf_store

__all__ = ["MAX_EVENTS", "PollRequest", "poll"]

log = logging.getLogger(__name__)

MAX_EVENTS = 1000
_DEFAULT_EVENTS = 100
#: Re-read the outbox this often while holding a poll: SETs that revoke nothing
#: (verification, account-enabled) do not wake the hub.
_RECHECK_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class PollRequest:
    """RFC 8936 §2.1 request members."""

    max_events: int
    return_immediately: bool
    acks: list[str]
    errors: dict[str, Any]

    @classmethod
    def parse(cls, body: object) -> PollRequest:
        """Read a poll request body.

        Raises:
            InvalidRequest: a member of the wrong type.
        """
        if not isinstance(body, Mapping):
            raise InvalidRequest("the poll request must be a JSON object")
        max_events = body.get("maxEvents", _DEFAULT_EVENTS)
        if not isinstance(max_events, int) or isinstance(max_events, bool) or max_events < 0:
            raise InvalidRequest("maxEvents must be a non-negative integer")
        immediately = body.get("returnImmediately", False)
        if not isinstance(immediately, bool):
            raise InvalidRequest("returnImmediately must be a boolean")
        acks = body.get("ack", [])
        if not isinstance(acks, list) or not all(isinstance(a, str) for a in acks):
            raise InvalidRequest("ack must be a list of jti strings")
        errors = body.get("setErrs", {})
        if not isinstance(errors, Mapping):
            raise InvalidRequest("setErrs must be an object keyed by jti")
        return cls(min(max_events, MAX_EVENTS), immediately, acks[:MAX_EVENTS], dict(errors))


async def poll(
    ctx: ServerContext,
    client_id: str,
    stream_id: str,
    request: PollRequest,
    *,
    gone: Callable[[], Awaitable[bool]] | None = None,
) -> dict[str, Any]:
    """Apply the acknowledgements, then the SETs due: ``{"sets": {...}, "moreAvailable": ...}``.

    ``gone`` tells a held poll that its receiver hung up, so it stops waiting.

    Raises:
        NotFound: no such stream of this client.
        InvalidRequest: the stream is not a poll stream.
    """
    async with ctx.db.transaction() as session:
        stream = await ssf_store.get_stream(session, stream_id)
        if stream is None or stream.client_id != client_id:
            raise NotFound("no such stream")
        if stream.delivery_method != "urn:ietf:rfc:8936":
            raise InvalidRequest("this stream is delivered by push")
        now = ctx.now()
        await ssf_store.acknowledge(session, stream_id, request.acks, now=now)
        if request.errors:
            for jti, err in list(request.errors.items())[:20]:
                log.warning("ssf: receiver %s refused SET %s: %.200r", client_id, jti[:64], err)
            await ssf_store.acknowledge(session, stream_id, list(request.errors), now=now)
        enabled = stream.status == "enabled"
    if request.max_events == 0 or not enabled:
        return {"sets": {}, "moreAvailable": False}
    deadline = time.monotonic() + (0 if request.return_immediately else ctx.settings.ssf_poll_wait)
    while True:
        seen = ctx.hub.latest
        async with ctx.db.transaction() as session:
            due = await ssf_store.pending(session, stream_id, request.max_events + 1)
        left = deadline - time.monotonic()
        if due or left <= 0 or ctx.hub.draining or (gone is not None and await gone()):
            break
        await ctx.hub.wait(seen, min(left, _RECHECK_SECONDS))
    sets = dict(due[: request.max_events])
    return {"sets": sets, "moreAvailable": len(due) > request.max_events}
