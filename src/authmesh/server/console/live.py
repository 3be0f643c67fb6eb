"""The live view of revocation: who follows the feed, how far behind, and when each
follower was sent each of the newest events.

The followers come from the feed's registries of open streams: this process's
(``ctx.hub.followers``, in memory) and, with Redis, every other process's post
(:mod:`~authmesh.server.feed.board`); the events from the durable log. The view is JSON,
read by the admin console's page once a second.
"""

from __future__ import annotations

from typing import Any

from authmesh.server.context import ServerContext
from authmesh.store import revocations

__all__ = ["EVENTS_SHOWN", "live_view"]

#: How many of the newest events the view lists.
EVENTS_SHOWN = 10
_FOLLOWER_FIELDS = frozenset(
    {
        "client_id",
        "replica",
        "server",
        "connected_at",
        "cursor",
        "behind_events",
        "behind_ms",
        "last_seen_at",
        "last_event_at",
        "events_sent",
    }
)


async def live_view(ctx: ServerContext) -> dict[str, Any]:
    """The followers with their lag, and the newest events with each follower's delivery."""
    async with ctx.db.transaction() as session:
        rows = await revocations.recent_rows(session, limit=EVENTS_SHOWN)
    registry = ctx.hub.followers
    snapshot = await ctx.hub.all_followers()
    head = max([registry.head, *(r.cursor for r in rows)])
    followers = []
    sent_at: dict[int, list[tuple[int, float]]] = {}
    for index, follower in enumerate(snapshot):
        followers.append({k: v for k, v in follower.items() if k in _FOLLOWER_FIELDS})
        for cursor, at in follower["deliveries"]:
            sent_at.setdefault(int(cursor), []).append((index, float(at)))
    events = []
    for row in rows:
        delivered = {index: at for index, at in sent_at.get(row.cursor, [])}
        events.append(
            {
                "cursor": row.cursor,
                "kind": row.kind,
                "value": row.value,
                "created_at": row.created_at,
                # Per follower (in the order of "followers"): ms from the write to the send.
                "received_ms": [
                    round((delivered[i] - row.created_at) * 1000, 1) if i in delivered else None
                    for i in range(len(followers))
                ],
            }
        )
    return {
        "now": ctx.now(),
        "head": head,
        "followers": followers,
        "events": events,
    }
