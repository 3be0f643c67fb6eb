"""Retention: what may be deleted when, and the background job that deletes it.

Every cutoff keeps a row for as long as anything could still ask about it:

* **refresh tokens**, used or not, until their own expiry (plus the leeway).
  A used token is the evidence of reuse detection: presented again, it ends
  its session. Its rightful holder can only present it before it expires, so
  a theft is still caught whenever the victim comes back; after that the token
  is dead anyway, and once deleted it is simply unknown (``invalid_grant``,
  the answer it got already, without the session's logout).
* **sessions** once ended or past their absolute end, a whole access-token
  lifetime (plus the leeway) later, with their remaining refresh tokens. An
  access token naming a deleted session is refused on the server, as one of an
  ended session is; the revocation events that ended it are in the log, with
  lives of their own.
* **authorization codes** after their expiry plus the leeway: a used code is
  kept while a replay could still be tried in time.
* **revocation events** once expired (every token they cover has expired; the
  leeway again allows for replicas' clocks) and older than ``feed_retention``.
  The newest event always stays. A follower whose cursor is older than the
  oldest event kept is not missing anything: the feed serves only live events
  after a cursor, and no live event is ever deleted.
* **audit events** after ``audit_retention`` (never, when it is 0).

With several replicas on PostgreSQL, one of them runs the job: the holder of an
advisory lock (:class:`~authmesh.store.job_lock.JobLock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from authmesh.server.config import ServerSettings
from authmesh.server.context import ServerContext
from authmesh.store.job_lock import JobLock
from authmesh.store.outages import database_outage, describe_outage
from authmesh.store.retention import Cutoffs, PruneCounts, prune

__all__ = ["RetentionJob", "cutoffs", "prune_now"]

log = logging.getLogger(__name__)


def cutoffs(settings: ServerSettings, now: float) -> Cutoffs:
    """What may be deleted at ``now`` under these settings (see the module's notes)."""
    leeway = float(settings.leeway)
    token_life = settings.access_token_ttl + leeway
    return Cutoffs(
        refresh_tokens=now - leeway,
        sessions=now - token_life,
        codes=now - leeway,
        events_expired=now - leeway,
        events_created=now - max(float(settings.feed_retention), token_life),
        audit=None if settings.audit_retention == 0 else now - settings.audit_retention,
    )


async def prune_now(ctx: ServerContext) -> PruneCounts:
    """Delete everything that is due now; the counts per kind."""
    settings = ctx.settings
    return await prune(
        ctx.db, cutoffs(settings, ctx.now()), batch_size=settings.retention_batch_size
    )


class RetentionJob:
    """Prunes every ``retention_interval`` seconds, in the process that holds the lock."""

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self.lock = JobLock(ctx.db, "retention")
        self._task: asyncio.Task[None] | None = None
        #: What the passes of this process removed, all together.
        self.removed = PruneCounts()
        self.passes = 0

    async def run_once(self) -> PruneCounts | None:
        """One pass if this process holds the lock; ``None`` when another one does."""
        if not await self.lock.acquire():
            return None
        counts = await prune_now(self._ctx)
        self.passes += 1
        self.removed.add(counts)
        return counts

    def start(self) -> None:
        """Run passes in the background (unless the interval is 0)."""
        if self._ctx.settings.retention_interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop the passes and let the lock go to another replica."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.lock.release()

    async def _run(self) -> None:
        interval = self._ctx.settings.retention_interval
        while True:
            await asyncio.sleep(interval)
            try:
                counts = await self.run_once()
            except Exception as exc:
                outage = database_outage(exc)
                if outage is None:
                    log.warning("retention pass failed; next in %ss", interval, exc_info=True)
                else:  # the next pass retries; a traceback would say nothing more
                    log.warning("retention pass skipped: %s", describe_outage(outage))
                continue
            if counts is not None and counts.total:
                removed = ", ".join(f"{n} {kind}" for kind, n in counts.as_dict().items() if n)
                log.info("retention removed %s", removed)
