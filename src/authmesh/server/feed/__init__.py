"""The revocation feed of the auth server, free of HTTP.

* :mod:`~authmesh.server.feed.publish`: write events and wake the streams;
* :mod:`~authmesh.server.feed.hub`: the newest cursor, and waking every process's streams;
* :mod:`~authmesh.server.feed.tail`: the newest events, read once for all caught-up streams;
* :mod:`~authmesh.server.feed.page`: one page of events after a cursor;
* :mod:`~authmesh.server.feed.stream`: events after a cursor, then new ones, with heartbeats;
* :mod:`~authmesh.server.feed.wakeups`: waiting for news or a heartbeat, with shared timers;
* :mod:`~authmesh.server.feed.followers`: the open streams, their lag, the per-client limit;
* :mod:`~authmesh.server.feed.board`: every process's open streams, through Redis;
* :mod:`~authmesh.server.feed.access`: who may read the feed.

The wire contract (JSON and SSE) is in docs/architecture.md; the SSE framing
is the route's (``authmesh.server.routes.feed``).
"""
