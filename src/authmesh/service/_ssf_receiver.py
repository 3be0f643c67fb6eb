"""Following the auth server over Shared Signals poll delivery instead of the native feed.

With ``ServiceConfig(revocation_transport="ssf-poll")`` the service is an
OpenID SSF receiver (docs/ssf.md): it reads ``/.well-known/ssf-configuration``,
takes a client-credentials token with scope ``ssf:stream``, finds its stream
(or creates one) and long-polls it (RFC 8936). Every SET goes through
:class:`~authmesh.service._ssf_sets.SetReader` (verified against the issuer's
JWKS, mapped back onto revocations applied to the same
:class:`RevocationState` as the native feed's).

Guarantees as the native feed's: a SET is acknowledged only after it was
applied, so after a restart the transmitter hands out again whatever was not
(catch-up); each poll answer proves liveness, so the staleness bound and fail
closed work unchanged. A SET that fails verification is refused with
``setErrs`` and never applied; one that cannot be checked yet (keys
unavailable) is left unacknowledged and retried.

The stream itself (endpoints, token, acks, refusals) is
:class:`~authmesh.service._ssf_stream.SsfStreamClient`, shared with the push
receiver (:mod:`._ssf_push_task`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from authmesh.service._discovery import Discovery
from authmesh.service._feed import FeedProcessor
from authmesh.service._http import HttpClients
from authmesh.service._jwks import JWKSCache
from authmesh.service._ssf_stream import POLL, PUSH, SsfStreamClient
from authmesh.service._subscriber import FeedTask
from authmesh.service.errors import FeedError

__all__ = ["POLL", "PUSH", "SsfPollSubscriber", "SsfStreamClient"]

log = logging.getLogger(__name__)


class SsfPollSubscriber(FeedTask):
    """Follows the issuer's SSF poll stream in an asyncio task (the ASGI counterpart of
    :class:`~authmesh.service._subscriber.RevocationSubscriber`)."""

    task_name = "authmesh-ssf-poll"
    #: What the transmitter must offer.
    methods: ClassVar[tuple[str, ...]] = (POLL,)

    def __init__(
        self,
        processor: FeedProcessor,
        discovery: Discovery,
        http: HttpClients,
        keys: JWKSCache,
    ) -> None:
        self.processor = processor
        self.stream = SsfStreamClient(processor, keys)
        self._discovery = discovery
        self._http = http
        self._keys = keys
        self._task: asyncio.Task[None] | None = None
        # Longer than the transmitter's long-poll hold; a silent stream is dead.
        self._timeout = httpx.Timeout(
            processor.config.http_timeout.total_seconds(), read=processor.read_timeout
        )
        #: The longest this receiver lets a long poll be held: an answer is what proves
        #: liveness, so one must come well within the staleness bound, whatever the
        #: transmitter's own hold (RFC 8936 lets the receiver set none).
        self.hold = processor.config.max_feed_staleness.total_seconds() / 2

    async def _run(self) -> None:
        attempt = 0
        proc = self.processor
        while True:
            heard = proc.state.last_heard
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (FeedError, httpx.HTTPError, ValueError) as exc:
                proc.failed(exc)
            except Exception as exc:  # never let the task die: that would fail closed forever
                log.exception("ssf receiver: unexpected error")
                proc.failed(exc)
            if proc.state.last_heard != heard:
                attempt = 0
            await asyncio.sleep(proc.backoff(attempt))
            attempt += 1

    async def _session(self) -> None:
        stream, client = self.stream, self._http.async_client()
        if stream.poll_url is None or stream.token_due():
            await self._connect(client)
        proc = self.processor
        proc.mode, proc.connected = "ssf-poll", True
        proc.stats.feed_connects += 1
        immediately = True
        while True:
            immediately = await self._poll(client, immediately=immediately)

    async def _catch_up(self, client: httpx.AsyncClient) -> None:
        """Poll without holding until an answer brings nothing (its acks sent)."""
        while await self._poll(client, immediately=True):
            pass

    async def _poll(self, client: httpx.AsyncClient, *, immediately: bool) -> bool:
        """One poll; returns whether the next should not be held (a backlog, or acks to send)."""
        stream = self.stream
        if stream.token_due():
            await self._take_token(client)
        assert stream.poll_url is not None
        body = stream.poll_body(immediately=immediately)
        request = client.post(
            stream.poll_url, json=body, headers=stream.bearer, timeout=self._timeout
        )
        try:
            response = await (request if immediately else asyncio.wait_for(request, self.hold))
        except TimeoutError:
            # Held past our bound: hang up (nothing was handed out that is not
            # delivered again) and ask for an immediate answer.
            return True
        retry = stream.apply_poll(response, sent=body)
        if retry:
            generation = self._keys.generation
            if not await self._keys.arefresh_unknown_kid(generation):
                raise FeedError(
                    "ssf: a SET names an unknown key and the JWKS cannot be refetched now"
                )
            await self._redo(client, retry)
        # Ask without holding while a backlog drains; hold (long poll) once caught up.
        return bool(stream.acks) or bool(stream.errors)

    async def _redo(self, client: httpx.AsyncClient, jtis: list[str]) -> None:
        """Ask again for SETs whose key was unknown: they were not acknowledged."""
        stream = self.stream
        assert stream.poll_url is not None
        body = stream.poll_body(immediately=True)
        response = await client.post(
            stream.poll_url, json=body, headers=stream.bearer, timeout=self._timeout
        )
        still = stream.apply_poll(response, sent=body)
        stream.refuse_unknown_kid([jti for jti in still if jti in jtis])

    async def _take_token(self, client: httpx.AsyncClient) -> None:
        meta = await self._discovery.aget()
        if meta.token_endpoint is None:
            raise FeedError("discovery names no token_endpoint")
        response = await client.post(
            meta.token_endpoint, **self.stream.token_request(), timeout=self._timeout
        )
        self.stream.take_token(response)

    async def _connect(self, client: httpx.AsyncClient) -> None:
        """Find this instance's stream (creating it on first start), delivered by poll."""
        stream = self.stream
        url = self.processor.config.issuer.rstrip("/") + "/.well-known/ssf-configuration"
        stream.check_metadata(await client.get(url, timeout=self._timeout), self.methods)
        await self._take_token(client)
        endpoint = stream.configuration_endpoint
        assert endpoint is not None
        found = stream.pick_stream(
            await client.get(endpoint, headers=stream.bearer, timeout=self._timeout)
        )
        if found is None:
            created = await client.post(
                endpoint,
                json=stream.new_stream_body({"method": POLL}),
                headers=stream.bearer,
                timeout=self._timeout,
            )
            stream.adopt(stream.stream_answer(created, status=201))
            return
        stream.adopt(found)
        if stream.poll_url is None:
            # Delivered by push until now: what it holds is polled from here on.
            await self._deliver_by(client, {"method": POLL})

    async def _deliver_by(self, client: httpx.AsyncClient, delivery: Mapping[str, Any]) -> None:
        """Give the stream this delivery; the transmitter retries what is pending at once."""
        stream = self.stream
        if stream.token_due():
            await self._take_token(client)
        assert stream.configuration_endpoint is not None
        response = await client.patch(
            stream.configuration_endpoint,
            json=stream.delivery_update(delivery),
            headers=stream.bearer,
            timeout=self._timeout,
        )
        if response.status_code == 404:
            stream.poll_url = stream.stream_id = None
        stream.adopt(stream.stream_answer(response, status=200))
