"""Redis clients whose calls end quickly: a down or hung Redis never holds a request long."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = ["short_timeout_client"]


def short_timeout_client(url: str, *, timeout: float) -> Redis:
    """A client whose every call fails within about ``timeout`` seconds when Redis does not answer.

    The library's default read timeout is 5 s, which a hung Redis added to every
    request. A call that finds its pooled connection broken (Redis restarted) is
    retried once on a fresh connection, at once; a timeout is not retried.
    """
    return Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
