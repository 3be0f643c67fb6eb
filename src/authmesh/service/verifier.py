"""Token verification for a service: the token core's rules, then revocation.

Per request:

1. A token verified before and still before ``exp + leeway`` comes from the
   :class:`~authmesh.service._cache.VerifiedCache` (a dict lookup).
2. Otherwise :func:`authmesh.jose.verify_jwt` applies every rule of the token
   core with :meth:`VerifyPolicy.for_access_tokens` (RFC 7519, 8725, 9068); on an
   unknown ``kid`` the JWKS is refetched (rate-limited) and the token retried once.
3. Always, cached or not: a live revocation event covering the token rejects
   it (:class:`TokenRevoked`), and a revocation feed silent for longer than
   ``max_feed_staleness`` rejects it too (:class:`VerifierUnavailable`), unless
   ``fail_open``.
"""

from __future__ import annotations

import logging
import time

from authmesh.jose.errors import (
    MalformedToken,
    TokenRejected,
    TokenRevoked,
    UnknownKid,
    VerifierUnavailable,
)
from authmesh.jose.jws import verify_jwt
from authmesh.jose.keyset import KeyResolver
from authmesh.jose.policy import Clock, VerifyPolicy
from authmesh.service._cache import VerifiedCache
from authmesh.service._jwks import JWKSCache
from authmesh.service._revocations import RevocationState
from authmesh.service.config import ServiceConfig
from authmesh.service.principal import Principal
from authmesh.service.stats import ServiceStats

__all__ = ["Verifier"]

log = logging.getLogger(__name__)

_REVOKED_MESSAGES = {
    "sub": "the token has been revoked: sign in again",
    "sid": "the session of this token has ended",
    "jti": "the token has been revoked",
}
_STALE_MESSAGE = (
    "the service cannot check revocations right now (revocation feed unreachable); "
    "try again shortly"
)
_NO_KEYS_MESSAGE = "the issuer's signing keys are not available yet; try again shortly"


class Verifier:
    """Verifies access tokens into :class:`Principal` objects; sync and async.

    Args:
        config: issuer, audience, leeway, staleness bound, cache size.
        keys: a :class:`JWKSCache` (refetched on unknown ``kid``) or any fixed
            :class:`~authmesh.jose.KeyResolver` such as a ``KeySet``.
        revocations: the revocation state; ``None`` disables revocation checks
            (only for tests and tools: a service without it cannot revoke).
        stats: counters to update.
        clock: wall-clock time, for ``exp``/``nbf``/``iat``.
    """

    def __init__(
        self,
        config: ServiceConfig,
        keys: JWKSCache | KeyResolver,
        revocations: RevocationState | None,
        *,
        stats: ServiceStats | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.config = config
        self.policy = VerifyPolicy.for_access_tokens(
            issuer=config.issuer,
            audience=config.audiences,
            leeway=config.leeway.total_seconds(),
            algorithms=config.algorithms,
        )
        self._keys = keys
        self._jwks = keys if isinstance(keys, JWKSCache) else None
        self._revocations = revocations
        self._stats = stats or ServiceStats()
        self._clock = clock
        self._leeway = self.policy.leeway
        self._max_stale = config.max_feed_staleness.total_seconds()
        self._fail_open = config.fail_open
        self._last_fail_open_warning = -1e18
        self.cache = VerifiedCache(config.verified_cache_size)
        if self._jwks is not None:
            self._jwks.on_keys_removed(lambda _kids: self.cache.clear())

    @property
    def stats(self) -> ServiceStats:
        """The counters this verifier updates."""
        return self._stats

    @property
    def revocations(self) -> RevocationState | None:
        """The revocation state consulted on every request."""
        return self._revocations

    def is_stale(self) -> bool:
        """Whether the revocation feed has been silent for longer than the bound."""
        state = self._revocations
        return state is not None and state.seconds_since_heard() > self._max_stale

    # -- public ------------------------------------------------------------------

    def verify(self, token: str) -> Principal:
        """Verify a bearer token (synchronous; may fetch the JWKS with ``httpx.Client``).

        Raises:
            TokenRejected: a subclass naming why (incl. ``TokenRevoked`` and
                ``VerifierUnavailable``); its ``message`` is safe to send back.
        """
        principal = self.cached(token)
        if principal is not None:
            return principal
        try:
            return self._admit(self._verify_sync(token))
        except TokenRejected as exc:
            self._stats.rejected[exc.reason] += 1
            raise

    def cached(self, token: str) -> Principal | None:
        """The principal of a token verified before, still cached, after the checks of
        every request (revocation, feed freshness); ``None``: verify it.

        Synchronous and free of I/O, so a framework adapter answers a known token
        without awaiting :meth:`averify`'s coroutines.

        Raises:
            TokenRejected: the token is revoked now, or the feed is stale.
        """
        principal = self.cache.get(token, self._clock())
        if principal is None:
            return None
        self._stats.cache_hits += 1
        try:
            return self._admit(principal)
        except TokenRejected as exc:
            self._stats.rejected[exc.reason] += 1
            raise

    async def averify(self, token: str) -> Principal:
        """Async :meth:`verify` (fetches the JWKS with ``httpx.AsyncClient``)."""
        principal = self.cached(token)
        if principal is not None:
            return principal
        try:
            return self._admit(await self._verify_async(token))
        except TokenRejected as exc:
            self._stats.rejected[exc.reason] += 1
            raise

    # -- steps -------------------------------------------------------------------

    def _admit(self, principal: Principal) -> Principal:
        """The checks that must run on every request: revocation and feed freshness."""
        state = self._revocations
        if state is None:
            return principal
        kind = state.refusal(
            principal.subject,
            principal.session_id,
            principal.token_id,
            principal.issued_at,
            self._max_stale,
        )
        if kind is None:
            return principal
        if kind != "stale":
            raise TokenRevoked(_REVOKED_MESSAGES[kind])
        if not self._fail_open:
            raise VerifierUnavailable(_STALE_MESSAGE)
        self._stats.fail_open_accepts += 1
        now = time.monotonic()
        if now - self._last_fail_open_warning > 60:
            self._last_fail_open_warning = now
            log.warning(
                "revocation feed silent for %.0f s: accepting tokens (fail_open)",
                state.seconds_since_heard(),
            )
        return principal

    def _complete(self, token: str, claims: dict[str, object]) -> Principal:
        principal = Principal.from_claims(claims, token)
        self._stats.verified += 1
        # The instant check_claims starts answering TokenExpired (RFC 7519 §4.1.4).
        self.cache.put(token, principal.expires_at + self._leeway, principal)
        return principal

    def _verify_sync(self, token: str) -> Principal:
        if not isinstance(token, str):
            raise MalformedToken("the token must be a string")
        jwks = self._jwks
        if jwks is None:
            verified = verify_jwt(token, self._keys, self.policy, clock=self._clock)
            return self._complete(token, verified.claims)
        jwks.refresh_if_due()
        generation = jwks.generation
        try:
            verified = verify_jwt(token, jwks, self.policy, clock=self._clock)
        except UnknownKid:
            if not jwks.refresh_unknown_kid(generation):
                if not jwks.loaded:
                    raise VerifierUnavailable(_NO_KEYS_MESSAGE) from None
                raise
            verified = verify_jwt(token, jwks, self.policy, clock=self._clock)
        return self._complete(token, verified.claims)

    async def _verify_async(self, token: str) -> Principal:
        if not isinstance(token, str):
            raise MalformedToken("the token must be a string")
        jwks = self._jwks
        if jwks is None:
            verified = verify_jwt(token, self._keys, self.policy, clock=self._clock)
            return self._complete(token, verified.claims)
        await jwks.arefresh_if_due()
        generation = jwks.generation
        try:
            verified = verify_jwt(token, jwks, self.policy, clock=self._clock)
        except UnknownKid:
            if not await jwks.arefresh_unknown_kid(generation):
                if not jwks.loaded:
                    raise VerifierUnavailable(_NO_KEYS_MESSAGE) from None
                raise
            verified = verify_jwt(token, jwks, self.policy, clock=self._clock)
        return self._complete(token, verified.claims)
