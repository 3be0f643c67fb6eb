"""One object per service wiring the SDK together: :class:`ServiceAuth`.

It owns the HTTP clients, discovery, the JWKS cache, the revocation state, its
subscriber and the :class:`Verifier`, and starts/stops them: asynchronously in
an ASGI lifespan (:meth:`lifespan`, :meth:`astart`), or synchronously with a
feed thread for WSGI (:meth:`start`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import httpx

from authmesh.errors import ConfigError
from authmesh.jose.policy import Clock
from authmesh.service._discovery import Discovery
from authmesh.service._feed import FeedProcessor
from authmesh.service._http import HttpClients
from authmesh.service._jwks import JWKSCache
from authmesh.service._live import LiveConnections
from authmesh.service._revocations import RevocationState
from authmesh.service._ssf_push import SsfPushEndpoint
from authmesh.service._ssf_push_task import SsfPushSubscriber
from authmesh.service._ssf_receiver import SsfPollSubscriber
from authmesh.service._subscriber import (
    FeedTask,
    RevocationSubscriber,
    ThreadedFeedTask,
    ThreadedRevocationSubscriber,
)
from authmesh.service.config import ServiceConfig
from authmesh.service.dpop import ProofChecker
from authmesh.service.principal import Principal
from authmesh.service.stats import ServiceStats
from authmesh.service.verifier import Verifier

__all__ = ["ServiceAuth"]

log = logging.getLogger(__name__)


class ServiceAuth:
    """Everything a service needs to verify tokens from one issuer.

    Args:
        config: the service's settings.
        transport: an httpx transport for calls to the auth server (tests).
        async_transport: the same for async calls.
        clock: wall-clock time (``exp``, event expiry).
        monotonic: the clock of feed staleness and cache lifetimes.

    Raises:
        ConfigError: no client credentials for the revocation feed and not
            ``fail_open`` (a service that cannot learn revocations must say so).
    """

    def __init__(
        self,
        config: ServiceConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
    ) -> None:
        if not config.has_client_credentials and not config.fail_open:
            raise ConfigError(
                "the revocation feed needs client_id and client_secret; "
                "without them set fail_open=True to accept tokens that cannot be revoked"
            )
        self.config = config
        self.stats = ServiceStats()
        self.http = HttpClients(config, transport=transport, async_transport=async_transport)
        self.discovery = Discovery(config, self.http, monotonic=monotonic)
        self.keys = JWKSCache(
            config, self.discovery, self.http, stats=self.stats, monotonic=monotonic
        )
        self.feed: FeedProcessor | None = None
        #: Open connections (WebSockets, streams) to end when their token is revoked.
        self.live = LiveConnections()
        #: DPoP-bound tokens need a proof by their key (RFC 9449 §7).
        self.dpop = ProofChecker(leeway=config.leeway.total_seconds(), clock=clock)
        self.revocations: RevocationState | None = None
        #: Where the auth server pushes SETs (``revocation_transport="ssf-push"``); the
        #: framework adapters serve it at ``config.ssf_push_path``.
        self.ssf_push: SsfPushEndpoint | None = None
        if config.has_client_credentials:
            self.revocations = RevocationState(clock=clock, monotonic=monotonic)
            self.revocations.listeners.append(self.live.on_event)
            self.feed = FeedProcessor(config, self.revocations, stats=self.stats)
            if config.revocation_transport == "ssf-push":
                self.ssf_push = SsfPushEndpoint(
                    self.feed, self.keys, clock=clock, monotonic=monotonic
                )
        self.verifier = Verifier(config, self.keys, self.revocations, stats=self.stats, clock=clock)
        self._async_subscriber: FeedTask | None = None
        self._thread_subscriber: ThreadedRevocationSubscriber | ThreadedFeedTask | None = None

    @classmethod
    def of(cls, config_or_auth: ServiceConfig | ServiceAuth) -> ServiceAuth:
        """``config_or_auth`` if it is a :class:`ServiceAuth`, else a new one for that config.

        Every framework adapter's ``install`` takes either.
        """
        if isinstance(config_or_auth, ServiceAuth):
            return config_or_auth
        if isinstance(config_or_auth, ServiceConfig):
            return cls(config_or_auth)
        raise TypeError(
            f"expected a ServiceConfig or a ServiceAuth, not {type(config_or_auth).__name__}"
        )

    @property
    def realm(self) -> str:
        """The realm of this service's challenges."""
        return self.config.effective_realm

    # -- verification ------------------------------------------------------------

    def verify(self, token: str) -> Principal:
        """:meth:`Verifier.verify`."""
        return self.verifier.verify(token)

    async def averify(self, token: str) -> Principal:
        """:meth:`Verifier.averify`."""
        return await self.verifier.averify(token)

    def cached(self, token: str) -> Principal | None:
        """:meth:`Verifier.cached`."""
        return self.verifier.cached(token)

    def check_presentation(
        self,
        principal: Principal,
        scheme: str,
        proofs: Sequence[str],
        method: str,
        url: Callable[[], str],
    ) -> None:
        """:meth:`ProofChecker.check`: a bound token only with a proof by its key."""
        self.dpop.check(principal, scheme, proofs, method, url)

    def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        """Whether an event the feed delivered covers a token with these claims."""
        return self.revocations is not None and self.revocations.is_revoked(dict(claims))

    # -- asynchronous life cycle (ASGI) --------------------------------------------

    async def astart(self, *, wait: float = 2.0) -> None:
        """Fetch the keys and start following the feed in a task.

        Waits up to ``wait`` seconds for the first catch-up so the service does
        not serve its first requests without revocation state; a down issuer
        only delays start-up by that much (health reports it).
        """
        await self.keys.arefresh(force=True)
        if self.feed is not None:
            if self._async_subscriber is None:
                self._async_subscriber = self._feed_task(self.feed)
            await self._async_subscriber.start()
            if wait > 0 and not await self._async_subscriber.wait_synced(wait):
                log.warning("revocation feed not reached within %.1f s of start-up", wait)

    async def astop(self) -> None:
        """Stop the feed task and close the HTTP clients."""
        if self._async_subscriber is not None:
            await self._async_subscriber.stop()
        await self.http.aclose()

    def _feed_task(self, feed: FeedProcessor) -> FeedTask:
        """The follower of the configured ``revocation_transport``, as an asyncio task."""
        transport = self.config.revocation_transport
        if transport == "ssf-push":
            assert self.ssf_push is not None
            return SsfPushSubscriber(feed, self.discovery, self.http, self.keys, self.ssf_push)
        if transport == "ssf-poll":
            return SsfPollSubscriber(feed, self.discovery, self.http, self.keys)
        return RevocationSubscriber(feed, self.discovery, self.http)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """An ASGI lifespan: ``FastAPI(lifespan=auth.lifespan)``."""
        await self.astart()
        try:
            yield
        finally:
            await self.astop()

    # -- synchronous life cycle (WSGI) ---------------------------------------------

    def start(self, *, wait: float = 2.0) -> None:
        """Fetch the keys and start following the feed in a daemon thread."""
        self.keys.refresh(force=True)
        if self.feed is not None:
            if self._thread_subscriber is None:
                feed = self.feed
                self._thread_subscriber = (
                    ThreadedRevocationSubscriber(feed, self.discovery, self.http)
                    if self.config.revocation_transport == "feed"
                    else ThreadedFeedTask(
                        feed,
                        self.http,
                        lambda: self._feed_task(feed),
                        name=f"authmesh-{self.config.revocation_transport}",
                    )
                )
            self._thread_subscriber.start()
            if wait > 0 and not self._thread_subscriber.wait_synced(wait):
                log.warning("revocation feed not reached within %.1f s of start-up", wait)

    def stop(self) -> None:
        """Stop the feed thread and close the synchronous HTTP client."""
        if self._thread_subscriber is not None:
            self._thread_subscriber.stop()
        self.http.close()

    # -- observability ---------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """A JSON-able health report: ``status`` is ``ok``, ``degraded`` or ``failing``.

        ``failing`` means requests are being refused (no keys, or a stale feed
        with fail-closed); ``degraded`` means accepted with a caveat.
        """
        feed: dict[str, Any] = {"enabled": False}
        stale = False
        if self.feed is not None:
            feed = self.feed.health()
            stale = bool(feed["stale"])
        status = "ok"
        if not self.keys.loaded or (stale and not self.config.fail_open):
            status = "failing"
        elif stale or self.feed is None or self.keys.last_error or not feed.get("connected"):
            status = "degraded"
        stats = self.stats
        return {
            "status": status,
            "issuer": self.config.issuer,
            "feed": feed,
            "revocations": self.revocations.counts() if self.revocations else {},
            "jwks": self.keys.health(),
            "verified_cache": {
                "size": len(self.verifier.cache),
                "max": self.verifier.cache.maxsize,
                "hits": stats.cache_hits,
                "verified": stats.verified,
            },
            "rejected": dict(stats.rejected),
        }
