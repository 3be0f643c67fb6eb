"""Push delivery (RFC 8935): a background task POSTs each stream's SETs to its receiver.

The outbox is the delivery state: a SET is done once the receiver answered
202 (or refused it for good with a 400 and an RFC 8935 §2.4 error); any other
outcome counts an attempt and schedules the next one after a doubling,
jittered back-off capped at ``ssf_push_retry_max``, so a receiver that is
down gets everything once it is back, across server restarts. SETs of one
stream go in order: a failed one holds the stream's later SETs back until it
is retried. Each stream is delivered by a task of its own, so a receiver that
is slow or unreachable delays no other receiver. A process claims a SET (a
short lease on ``next_attempt_at``) before sending it, so server processes
sharing the database do not deliver it twice at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import httpx

from authmesh.server.context import ServerContext
from authmesh.server.ssf.streams import PUSH
from authmesh.store import ssf as ssf_store
from authmesh.store.models import SsfOutboxRow, SsfStreamRow
from authmesh.store.outages import database_outage, describe_outage

__all__ = ["PushWorker"]

log = logging.getLogger(__name__)

_BATCH = 200
_IDLE_SECONDS = 1.0
_PRUNE_EVERY = 300.0
_ACKED_KEPT_SECONDS = 3600.0
_STOP_GRACE_SECONDS = 2.0


class PushWorker:
    """Delivers the push streams' SETs; start it in the app's lifespan."""

    def __init__(
        self,
        ctx: ServerContext,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._ctx = ctx
        self._transport = transport
        self._rng = rng
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._pruned_at = 0.0
        self._stopping = asyncio.Event()
        #: The soonest retry a pass saw: the loop wakes for it.
        self._next_retry = float("inf")
        #: The streams being delivered now, by stream id.
        self._deliveries: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        """Start the delivery loop."""
        self._client = httpx.AsyncClient(
            transport=self._transport,
            timeout=httpx.Timeout(self._ctx.settings.ssf_push_timeout),
            follow_redirects=False,
        )
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="authmesh-ssf-push")

    async def stop(self) -> None:
        """Stop delivering; what is not delivered stays in the outbox.

        The loop and the stream deliveries are asked to end after the SET in
        hand, so no database transaction is cut in the middle; a push still
        waiting on a slow receiver after a grace period is cancelled.
        """
        task, self._task = self._task, None
        self._stopping.set()
        tasks = [t for t in (task, *self._deliveries.values()) if t is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=_STOP_GRACE_SECONDS)
            for running in tasks:
                running.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        hub = self._ctx.hub
        while not self._stopping.is_set():
            seen = hub.latest
            self._ctx.push_due.clear()
            try:
                await self.deliver_due()
                await self._prune_now_and_then()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log_failed_pass(exc)
            # A revocation wakes the hub, a verification or a stream update ``push_due``;
            # SETs announced by another process wait for the idle tick.
            until_retry = self._next_retry - self._ctx.now()
            self._next_retry = float("inf")
            await self._idle(hub.wait(seen, max(0.01, min(_IDLE_SECONDS, until_retry))))

    async def _idle(self, wake: Coroutine[Any, Any, object]) -> None:
        """Wait for ``wake``, SETs due at once (``push_due``) or :meth:`stop`: the first."""
        waiters = {
            asyncio.ensure_future(wake),
            asyncio.ensure_future(self._ctx.push_due.wait()),
            asyncio.ensure_future(self._stopping.wait()),
        }
        _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()

    async def deliver_due(self) -> int:
        """One pass: start delivering every push stream whose oldest SET is due and that
        is not being delivered already; returns how many deliveries it started.

        Each stream is delivered by a task of its own, so a slow or unreachable
        receiver holds back its own SETs only, never another receiver's.
        """
        ctx = self._ctx
        async with ctx.db.transaction() as session:
            streams = [
                s
                for s in await ssf_store.receiving_streams(session)
                if s.delivery_method == PUSH
                and s.status == "enabled"
                and s.stream_id not in self._deliveries
            ]
            queues = [
                (stream, await ssf_store.pending_push(session, stream.stream_id, limit=_BATCH))
                for stream in streams
            ]
        started = 0
        for stream, rows in queues:
            if not rows:
                continue
            if rows[0].next_attempt_at > ctx.now():
                self._next_retry = min(self._next_retry, rows[0].next_attempt_at)
                continue
            task = asyncio.create_task(
                self._deliver_stream(stream, rows), name="authmesh-ssf-push-stream"
            )
            self._deliveries[stream.stream_id] = task
            task.add_done_callback(functools.partial(self._delivered, stream.stream_id))
            started += 1
        return started

    async def _deliver_stream(self, stream: SsfStreamRow, rows: Sequence[SsfOutboxRow]) -> None:
        """Push one stream's SETs in order, from ``rows`` on, until none is due, one
        fails, or the worker stops."""
        ctx = self._ctx
        try:
            while rows:
                for row in rows:
                    # The oldest SET not done holds the later ones back: it is retried first.
                    if self._stopping.is_set() or row.next_attempt_at > ctx.now():
                        return
                    lease = await self._claim(row)
                    if lease is None or not await self._send(stream, row, lease):
                        return
                async with ctx.db.transaction() as session:
                    rows = await ssf_store.pending_push(session, stream.stream_id, limit=_BATCH)
        except Exception as exc:
            _log_failed_pass(exc)

    def _delivered(self, stream_id: str, task: asyncio.Task[None]) -> None:
        self._deliveries.pop(stream_id, None)
        # What is due next on that stream (a retry, or a SET announced meanwhile) is
        # the next pass's: it reads the outbox again.
        if not task.cancelled():
            self._ctx.push_due.set()

    async def _claim(self, row: SsfOutboxRow) -> float | None:
        """Lease ``row`` for one attempt; the lease's end, or ``None`` if another process won."""
        until = self._ctx.now() + self._ctx.settings.ssf_push_timeout + 5.0
        async with self._ctx.db.transaction() as session:
            won = await ssf_store.claim_push(session, row.id, seen=row.next_attempt_at, until=until)
        return until if won else None

    async def _send(self, stream: SsfStreamRow, row: SsfOutboxRow, lease: float) -> bool:
        """POST one SET leased until ``lease``; whether it is done (accepted, or refused)."""
        assert self._client is not None and stream.endpoint_url is not None
        headers = {"Content-Type": "application/secevent+jwt", "Accept": "application/json"}
        if stream.authorization_header:
            headers["Authorization"] = stream.authorization_header
        error: str | None = None
        try:
            response = await self._client.post(
                stream.endpoint_url, content=row.set_token.encode(), headers=headers
            )
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}"
        else:
            if response.status_code == 202 or response.status_code == 200:
                await self._settle(row, None)
                return True
            if response.status_code == 400:
                # RFC 8935 §2.3: the receiver refused this SET; sending it again would not help.
                await self._settle(row, _refusal(response))
                return True
            error = f"HTTP {response.status_code}"
        await self._retry_later(row, error, lease)
        return False

    async def _settle(self, row: SsfOutboxRow, refusal: str | None) -> None:
        if refusal is not None:
            log.warning("ssf push: stream %s refused SET %s: %s", row.stream_id, row.jti, refusal)
        async with self._ctx.db.transaction() as session:
            await ssf_store.settle_push(session, row.id, now=self._ctx.now(), error=refusal)

    async def _retry_later(self, row: SsfOutboxRow, error: str, lease: float) -> None:
        settings = self._ctx.settings
        base = settings.ssf_push_retry_initial * 2.0 ** min(row.attempts, 30)
        delay = min(base, settings.ssf_push_retry_max) * (0.5 + self._rng() / 2)
        log.info(
            "ssf push: stream %s, SET %s: %s; retry in %.1f s", row.stream_id, row.jti, error, delay
        )
        retry_at = self._ctx.now() + delay
        async with self._ctx.db.transaction() as session:
            await ssf_store.record_push_failure(
                session, row.id, error=error, retry_at=retry_at, leased_until=lease
            )

    async def _prune_now_and_then(self) -> None:
        ctx = self._ctx
        now = ctx.now()
        if now - self._pruned_at < _PRUNE_EVERY:
            return
        self._pruned_at = now
        async with ctx.db.transaction() as session:
            await ssf_store.prune(
                session,
                acknowledged_before=now - _ACKED_KEPT_SECONDS,
                created_before=now - ctx.settings.ssf_retention,
            )


def _log_failed_pass(exc: Exception) -> None:
    outage = database_outage(exc)
    if outage is None:
        log.warning("ssf push pass failed", exc_info=exc)
    else:
        log.warning("ssf push pass skipped: %s", describe_outage(outage))


def _refusal(response: httpx.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return "HTTP 400"
    if isinstance(doc, dict):
        return f"{str(doc.get('err'))[:50]}: {str(doc.get('description'))[:200]}"
    return "HTTP 400"
