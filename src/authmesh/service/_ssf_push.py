"""The push endpoint of a Shared Signals receiver (RFC 8935), free of any framework.

The auth server POSTs each SET to the URL the service gave its stream
(``ssf_push_url``) with the ``Authorization`` value the service gave it too.
:class:`SsfPushEndpoint` decides the answer; the adapters of
:mod:`._ssf_push_http` (ASGI for Starlette, FastAPI and Strawberry; WSGI for
Flask and plain WSGI) only read the request and write this answer:

* the ``Authorization`` is not the stream's (a random bearer value made per
  process, so one service instance's secret does not outlive it): **401**.
  Not a 400, which would tell the transmitter to drop the SET for good
  (RFC 8935 §2.3); a 401 is retried. Nothing else of the request is read;
* not ``application/secevent+jwt``, too large, or a SET that fails
  verification (:class:`~authmesh.service._ssf_sets.SetReader`): **400** with
  ``{"err", "description"}`` and the RFC 8935 §2.4 code;
* a SET received before (same ``jti``: a replay, or a transmitter resending
  one whose answer it lost) or older than ``ssf_event_retention`` (every
  token it could revoke has expired, and its ``jti`` is no longer
  remembered): **400** ``invalid_request``;
* signed by a key not in the cached JWKS: the JWKS is refetched once (rate
  limited); a key still unknown is **400** ``invalid_key``, a refetch not
  possible now **503** (the transmitter retries);
* otherwise it is applied to the revocation state and answered **202**; any
  SET accepted proves the transmitter reaches this service (liveness), and a
  verification SET echoing a ``state`` this receiver asked for tells the
  keep-alive of :mod:`._ssf_push_task` its request was answered.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authmesh.jose import UnknownKid
from authmesh.jose.policy import Clock
from authmesh.service._feed import FeedProcessor
from authmesh.service._jwks import JWKSCache
from authmesh.service._ssf_sets import VERIFICATION, SetReader, SetRefused
from authmesh.service._ssf_stream import PUSH

__all__ = ["MAX_BODY", "PushAnswer", "SsfPushEndpoint"]

#: Larger bodies are refused unread (a SET is a few hundred bytes).
MAX_BODY = 16 * 1024
_CONTENT_TYPE = "application/secevent+jwt"
#: Unanswered verification ``state``s kept.
_MAX_STATES = 16
_NO_STORE = ("Cache-Control", "no-store")


@dataclass(frozen=True, slots=True)
class PushAnswer:
    """What the push endpoint answers: status, headers and body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""


def _error(status: int, err: str, description: str, *extra: tuple[str, str]) -> PushAnswer:
    body = json.dumps({"err": err, "description": description[:200]}).encode()
    return PushAnswer(status, (("Content-Type", "application/json"), _NO_STORE, *extra), body)


def _refuse(refused: SetRefused) -> PushAnswer:
    """RFC 8935 §2.3: 400 with the error code and description."""
    return _error(400, refused.refusal.err, refused.refusal.description)


ACCEPTED = PushAnswer(202, (_NO_STORE,))
METHOD_NOT_ALLOWED = PushAnswer(405, (("Allow", "POST"), _NO_STORE))
_UNAUTHORIZED = _error(
    401,
    "authentication_failed",
    "the Authorization header is not the one this stream was configured with",
    ("WWW-Authenticate", "Bearer"),
)
_KEYS_UNAVAILABLE = PushAnswer(503, (("Retry-After", "2"), _NO_STORE))


class SsfPushEndpoint:
    """Receives pushed SETs for one service instance (see the module docstring).

    Args:
        processor: the revocation state and counters the SETs feed.
        keys: the issuer's JWKS cache.
        clock: wall-clock time (``iat``, replay memory).
        monotonic: the clock of verification requests.
    """

    def __init__(
        self,
        processor: FeedProcessor,
        keys: JWKSCache,
        *,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
    ) -> None:
        config = processor.config
        assert config.ssf_push_url is not None and config.ssf_push_path is not None
        self.processor = processor
        self.url = config.ssf_push_url
        self.path = config.ssf_push_path
        self.reader = SetReader(processor, keys, clock=clock)
        self._clock = clock
        self._monotonic = monotonic
        #: What the transmitter must send as ``Authorization`` (set on the stream at start).
        self.authorization = "Bearer " + secrets.token_urlsafe(32)
        self._expected = self.authorization.encode()
        self._states: dict[str, float] = {}
        self._lock = threading.Lock()

    def delivery(self) -> dict[str, Any]:
        """The stream's ``delivery`` that points the transmitter here (SSF 1.0 §8.1.1)."""
        return {
            "method": PUSH,
            "endpoint_url": self.url,
            "authorization_header": self.authorization,
        }

    # -- verification requests (the keep-alive's side) ----------------------------------

    def new_state(self) -> str:
        """A fresh ``state`` for a verification request, remembered until answered."""
        state = secrets.token_urlsafe(16)
        with self._lock:
            if len(self._states) >= _MAX_STATES:
                self._states.pop(next(iter(self._states)))
            self._states[state] = self._monotonic()
        return state

    def verification_wait(self) -> float | None:
        """Seconds since the oldest verification request still unanswered, or ``None``."""
        with self._lock:
            oldest = min(self._states.values(), default=None)
        return None if oldest is None else self._monotonic() - oldest

    def forget_states(self) -> None:
        """Drop the verification requests of a previous session."""
        with self._lock:
            self._states.clear()

    # -- receiving ----------------------------------------------------------------------

    def receive(
        self, authorization: Sequence[str], content_type: str | None, body: bytes
    ) -> PushAnswer:
        """Answer one push (synchronous: a JWKS refetch uses the blocking client)."""
        first = self._first_try(authorization, content_type, body)
        if isinstance(first, PushAnswer):
            return first
        token, generation = first
        if not self.reader.keys.refresh_unknown_kid(generation):
            return _KEYS_UNAVAILABLE
        return self._accept(token, keys_fresh=True)

    async def areceive(
        self, authorization: Sequence[str], content_type: str | None, body: bytes
    ) -> PushAnswer:
        """Answer one push (asynchronous)."""
        first = self._first_try(authorization, content_type, body)
        if isinstance(first, PushAnswer):
            return first
        token, generation = first
        if not await self.reader.keys.arefresh_unknown_kid(generation):
            return _KEYS_UNAVAILABLE
        return self._accept(token, keys_fresh=True)

    def _first_try(
        self, authorization: Sequence[str], content_type: str | None, body: bytes
    ) -> PushAnswer | tuple[str, int]:
        """The answer, or the SET and the key set generation to refresh when its key is unknown."""
        token = self._admit(authorization, content_type, body)
        if isinstance(token, PushAnswer):
            return token
        generation = self.reader.keys.generation
        try:
            return self._accept(token, keys_fresh=False)
        except UnknownKid:
            return token, generation

    def _admit(
        self, authorization: Sequence[str], content_type: str | None, body: bytes
    ) -> str | PushAnswer:
        """The SET of a well-formed, authorized push, or the answer refusing it."""
        if len(authorization) != 1 or not hmac.compare_digest(
            authorization[0].encode("latin-1", "replace"), self._expected
        ):
            self.processor.stats.rejected["ssf_push_unauthorized"] += 1
            return _UNAUTHORIZED
        media = (content_type or "").split(";")[0].strip().lower()
        if media != _CONTENT_TYPE:
            return _refuse(
                self.reader.refused("invalid_request", f"the body must be {_CONTENT_TYPE}")
            )
        if len(body) > MAX_BODY:
            return _refuse(self.reader.refused("invalid_request", "the body is too large"))
        try:
            return body.decode("ascii").strip()
        except UnicodeDecodeError:
            return _refuse(self.reader.refused("invalid_request", "the body is not a JWS"))

    def _accept(self, token: str, *, keys_fresh: bool) -> PushAnswer:
        """Check, dedupe and apply a SET. Raises UnknownKid while the keys may be stale."""
        reader = self.reader
        try:
            claims = reader.check(token)
            reader.accept(claims, refuse_seen=True)
        except UnknownKid:
            if not keys_fresh:
                raise
            return _refuse(reader.refused("invalid_key", "no key of the issuer signed this SET"))
        except SetRefused as exc:
            return _refuse(exc)
        self._answered(claims)
        proc = self.processor
        proc.state.mark_heard()
        proc.state.prune()
        proc.connected = True
        return ACCEPTED

    def _answered(self, claims: Mapping[str, Any]) -> None:
        events = claims.get("events")
        payload = events.get(VERIFICATION) if isinstance(events, Mapping) else None
        if not isinstance(payload, Mapping):
            return
        self.processor.stats.feed_heartbeats += 1
        with self._lock:
            if payload.get("state") in self._states:
                # Delivered in order: the requests before this one are answered or lost.
                self._states.clear()
