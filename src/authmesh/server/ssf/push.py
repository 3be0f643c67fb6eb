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
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.server.context import ServerContext
from authmesh.server.ssf.streams import PUSH
from authmesh.store import ssf as ssf_store
from authmesh.store.models import SsfOutboxRow, SsfStreamRow
from authmesh.store.outages import database_outage, describe_outage

__all__ = ["PushWorker"]

log = logging.getLogger(__name__)

#: SETs of one stream leased at once: all sent within the lease even from a slow receiver.
_LEASED = 20
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
        receiver holds back its own SETs only, never another receiver's. The due
        SETs are leased in the pass's own transaction, so the pushes go out
        without another database round trip first.
        """
        ctx = self._ctx
        starts: list[tuple[SsfStreamRow, list[SsfOutboxRow], float]] = []
        async with ctx.db.transaction() as session:
            for stream in await ssf_store.receiving_streams(session):
                if (
                    stream.delivery_method != PUSH
                    or stream.status != "enabled"
                    or stream.stream_id in self._deliveries
                ):
                    continue
                rows = await ssf_store.pending_push(session, stream.stream_id, limit=_LEASED)
                if rows and rows[0].next_attempt_at > ctx.now():
                    self._next_retry = min(self._next_retry, rows[0].next_attempt_at)
                    continue
                leased, lease = await self._claim_due(session, rows)
                if leased:
                    starts.append((stream, leased, lease))
        for stream, leased, lease in starts:
            task = asyncio.create_task(
                self._deliver_stream(stream, leased, lease), name="authmesh-ssf-push-stream"
            )
            self._deliveries[stream.stream_id] = task
            task.add_done_callback(functools.partial(self._delivered, stream.stream_id))
        return len(starts)

    async def _claim_due(
        self, session: AsyncSession, rows: Sequence[SsfOutboxRow]
    ) -> tuple[list[SsfOutboxRow], float]:
        """Lease the due SETs of ``rows``, oldest first, as far as this process wins them."""
        now = self._ctx.now()
        until = now + self._ctx.settings.ssf_push_timeout + 5.0
        leased: list[SsfOutboxRow] = []
        for row in rows:
            seen = row.next_attempt_at
            if seen > now or not await ssf_store.claim_push(
                session, row.id, seen=seen, until=until
            ):
                break
            leased.append(row)
        return leased, until

    async def _deliver_stream(
        self, stream: SsfStreamRow, rows: Sequence[SsfOutboxRow], lease: float
    ) -> None:
        """Push one stream's leased SETs in order, each settled while the next one is sent.

        The first that fails is retried later and the ones after it are given back
        (the oldest SET not done holds the later ones back); the next pass reads
        the outbox again.
        """
        settled: asyncio.Future[None] | None = None
        try:
            for index, row in enumerate(rows):
                if self._stopping.is_set():
                    await self._give_back(None, rows[index:], lease)
                    return
                done, note = await self._send(stream, row)
                if not done:
                    assert note is not None
                    await self._give_back((row, note), rows[index + 1 :], lease)
                    return
                settled = asyncio.ensure_future(self._settle(row, note, after=settled))
        except Exception as exc:
            _log_failed_pass(exc)
        finally:
            if settled is not None:
                await asyncio.shield(settled)

    def _delivered(self, stream_id: str, task: asyncio.Task[None]) -> None:
        self._deliveries.pop(stream_id, None)
        # What is due next on that stream (a retry, or a SET announced meanwhile) is
        # the next pass's: it reads the outbox again.
        if not task.cancelled():
            self._ctx.push_due.set()

    async def _send(self, stream: SsfStreamRow, row: SsfOutboxRow) -> tuple[bool, str | None]:
        """POST one SET: whether it is done (accepted, or refused for good), and the
        refusal or the error."""
        assert self._client is not None and stream.endpoint_url is not None
        headers = {"Content-Type": "application/secevent+jwt", "Accept": "application/json"}
        if stream.authorization_header:
            headers["Authorization"] = stream.authorization_header
        try:
            response = await self._client.post(
                stream.endpoint_url, content=row.set_token.encode(), headers=headers
            )
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__}"
        if response.status_code == 202 or response.status_code == 200:
            return True, None
        if response.status_code == 400:
            # RFC 8935 §2.3: the receiver refused this SET; sending it again would not help.
            refusal = _refusal(response)
            log.warning("ssf push: stream %s refused SET %s: %s", row.stream_id, row.jti, refusal)
            return True, refusal
        return False, f"HTTP {response.status_code}"

    async def _settle(
        self, row: SsfOutboxRow, refusal: str | None, *, after: asyncio.Future[None] | None
    ) -> None:
        """Mark ``row`` done, once the settle ``after`` (the SET before it) is written."""
        if after is not None:
            await after
        try:
            async with self._ctx.db.transaction() as session:
                await ssf_store.settle_push(session, row.id, now=self._ctx.now(), error=refusal)
        except Exception as exc:
            # Left leased: pushed again when the lease ends (the receiver knows its jti).
            _log_failed_pass(exc)

    async def _give_back(
        self, failed: tuple[SsfOutboxRow, str] | None, rest: Sequence[SsfOutboxRow], lease: float
    ) -> None:
        """Schedule the retry of a SET that failed, and give back the leases after it."""
        ctx = self._ctx
        async with ctx.db.transaction() as session:
            if failed is not None:
                row, error = failed
                await ssf_store.record_push_failure(
                    session,
                    row.id,
                    error=error,
                    retry_at=self._retry_at(row, error),
                    leased_until=lease,
                )
            await ssf_store.release_push(
                session, [r.id for r in rest], leased_until=lease, now=ctx.now()
            )

    def _retry_at(self, row: SsfOutboxRow, error: str) -> float:
        settings = self._ctx.settings
        base = settings.ssf_push_retry_initial * 2.0 ** min(row.attempts, 30)
        delay = min(base, settings.ssf_push_retry_max) * (0.5 + self._rng() / 2)
        log.info(
            "ssf push: stream %s, SET %s: %s; retry in %.1f s", row.stream_id, row.jti, error, delay
        )
        return self._ctx.now() + delay

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
