"""Following the auth server over Shared Signals push delivery (RFC 8935).

With ``ServiceConfig(revocation_transport="ssf-push", ssf_push_url=...)`` the
auth server POSTs each SET to the service's push endpoint
(:mod:`._ssf_push`). This task keeps the stream pointed there and proves it
works:

1. **Catch-up.** On every (re)connection the stream is switched to poll
   delivery and polled until empty, as the poll receiver does, so whatever the
   transmitter could not push while this instance was down (or starting: a
   service is not listening until its start-up is over) is applied before
   :meth:`~authmesh.service.ServiceAuth.astart` returns. Then the stream is
   switched to push, to ``ssf_push_url``, with a fresh ``Authorization`` value;
   an update also makes the transmitter retry at once what it was backing off
   from.
2. **Staleness bound.** Every SET accepted proves the transmitter reaches the
   service. After a third of ``max_feed_staleness`` without one, the task asks
   for a verification event (SSF 1.0 §8.1.4.2) with a fresh ``state``; one
   unanswered for as long again means the pushes are not arriving: the feed
   is reported disconnected, the stream updated again (cutting any back-off
   short) and a new verification asked for. Nothing heard for
   ``max_feed_staleness`` fails closed, as with every transport.
3. **Issuer unreachable.** Any failure talking to the issuer ends the session;
   the next one (after the feed's back-off) catches up again.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from authmesh.service._discovery import Discovery
from authmesh.service._feed import FeedProcessor
from authmesh.service._http import HttpClients
from authmesh.service._jwks import JWKSCache
from authmesh.service._ssf_push import SsfPushEndpoint
from authmesh.service._ssf_receiver import SsfPollSubscriber
from authmesh.service._ssf_stream import POLL, PUSH
from authmesh.service.errors import FeedError

__all__ = ["SsfPushSubscriber"]

log = logging.getLogger(__name__)


class SsfPushSubscriber(SsfPollSubscriber):
    """Keeps this instance's SSF stream pushing to ``endpoint``, in an asyncio task."""

    task_name = "authmesh-ssf-push"
    methods = (PUSH, POLL)

    def __init__(
        self,
        processor: FeedProcessor,
        discovery: Discovery,
        http: HttpClients,
        keys: JWKSCache,
        endpoint: SsfPushEndpoint,
    ) -> None:
        super().__init__(processor, discovery, http, keys)
        self.endpoint = endpoint
        # One memory of the SETs seen, so a push cannot replay what the catch-up polled.
        self.stream.sets = endpoint.reader
        #: Silence after which a verification is asked for, and how long one may take.
        self.interval = processor.config.max_feed_staleness.total_seconds() / 3

    async def _session(self) -> None:
        client = self._http.async_client()
        proc = self.processor
        self.endpoint.forget_states()
        await self._connect(client)
        await self._catch_up(client)
        await self._deliver_by(client, self.endpoint.delivery())
        proc.mode, proc.connected = "ssf-push", True
        proc.stats.feed_connects += 1
        await self._keep_alive(client)

    async def _keep_alive(self, client: httpx.AsyncClient) -> None:
        """Ask for a verification whenever nothing was pushed for a while (see the module)."""
        proc, endpoint = self.processor, self.endpoint
        tick = max(0.02, self.interval / 5)
        while True:
            await asyncio.sleep(tick)
            if proc.state.seconds_since_heard() < self.interval:
                continue
            waited = endpoint.verification_wait()
            if waited is not None and waited < self.interval:
                continue
            if waited is not None:
                proc.failed(
                    FeedError(
                        f"ssf push: nothing received for {proc.state.seconds_since_heard():.1f} s;"
                        f" can the issuer reach {endpoint.url}?"
                    )
                )
                endpoint.forget_states()
                # Points the stream here again and makes what is backed off due now.
                await self._deliver_by(client, endpoint.delivery())
            await self._request_verification(client)

    async def _request_verification(self, client: httpx.AsyncClient) -> None:
        stream = self.stream
        if stream.verification_endpoint is None:
            raise FeedError("ssf-configuration: no verification_endpoint")
        if stream.token_due():
            await self._take_token(client)
        response = await client.post(
            stream.verification_endpoint,
            json={"stream_id": stream.stream_id, "state": self.endpoint.new_state()},
            headers=stream.bearer,
            timeout=self._timeout,
        )
        if response.status_code == 401:
            stream.drop_token()
        if response.status_code != 204:
            raise FeedError(
                f"ssf verification: HTTP {response.status_code}", status=response.status_code
            )
