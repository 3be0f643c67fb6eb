"""DPoP proofs at the server: every check of :func:`authmesh.dpop.verify_proof`, and a
proof used once across all the server's processes (RFC 9449 §11.1).

Each process remembers the proofs it saw (``ServerContext.dpop_replay``). With
Redis configured (several workers or replicas), a proof's ``jti`` is also
recorded there with one ``SET NX`` that expires when the proof would be too old
anyway, so a proof replayed to another process within its minute is refused too.

While Redis cannot be reached, each process's own memory still refuses what that
process saw, and Redis is left alone for ``retry_interval`` seconds after a
failure: an outage costs one short timeout, not one per request, and the token
endpoint keeps answering. A warning is logged when the outage starts and ends.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from authmesh.dpop import DpopProof, verify_proof
from authmesh.errors import InvalidDpopProof
from authmesh.jose.policy import Clock
from authmesh.server.redis_outage import RedisOutage

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from authmesh.server.context import ServerContext

__all__ = ["SharedProofLog", "check_proof"]

log = logging.getLogger(__name__)

#: How long a proof is accepted after its ``iat`` (RFC 9449 §11.1 leaves it to the server).
MAX_AGE = 60.0


class SharedProofLog:
    """The proofs every process of the server has seen, in Redis.

    Args:
        redis: the client (one whose calls fail within a short timeout).
        prefix: the namespace of the keys (one per database schema).
        clock: wall-clock seconds, the clock of the proofs' ``iat``.
        monotonic: the clock of the retry interval (tests move it).
        retry_interval: seconds to leave Redis alone after a failure.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        retry_interval: float = 5.0,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._clock = clock
        self._outage = RedisOutage(retry_interval, monotonic)

    @property
    def retry_interval(self) -> float:
        """Seconds to leave Redis alone after a failure."""
        return self._outage.retry_interval

    @property
    def redis_down(self) -> bool:
        """Whether the last call to Redis failed (and none succeeded since)."""
        return self._outage.down

    async def first_use(self, proof: DpopProof, *, leeway: float) -> bool:
        """Record the proof until it would be too old; whether no process had seen it.

        ``True`` while Redis is down: the caller's own memory is all there is then.
        """
        if not self._outage.worth_trying():
            return True
        expires_in = proof.iat + MAX_AGE + leeway - self._clock()
        key = f"{self._prefix}{proof.jkt}:{proof.jti}"
        try:
            stored = await self._redis.set(key, b"1", nx=True, px=max(1, int(expires_in * 1000)))
        except RedisError as exc:
            if self._outage.failed():
                log.warning(
                    "Redis is down (%s): DPoP proofs are remembered per process until it "
                    "answers again",
                    type(exc).__name__,
                )
            return True
        if self._outage.succeeded():
            log.warning("Redis answers again: DPoP proofs are remembered by every process")
        return bool(stored)

    async def aclose(self) -> None:
        """Close the Redis client."""
        await self._redis.aclose()


async def check_proof(
    ctx: ServerContext,
    proof: str,
    *,
    method: str,
    url: str,
    access_token: str | None = None,
    leeway: float = 5.0,
) -> DpopProof:
    """A proof for this request that passed every check and was never used before.

    Raises:
        InvalidDpopProof: a check failed, or this or another process saw the proof.
    """
    checked = verify_proof(
        proof,
        method=method,
        url=url,
        now=ctx.now(),
        access_token=access_token,
        max_age=MAX_AGE,
        leeway=leeway,
        replay=ctx.dpop_replay,
    )
    shared = ctx.dpop_shared
    if shared is not None and not await shared.first_use(checked, leeway=leeway):
        raise InvalidDpopProof("the proof was used before")
    return checked
