"""Security Event Tokens as a receiver reads them: verified, then mapped onto revocations.

Both Shared Signals receivers of the SDK, poll (:mod:`._ssf_receiver`) and push
(:mod:`._ssf_push`), hand every SET they get to one :class:`SetReader`: it
checks the SET (RFC 8417: signature by a key of the issuer's JWKS, ``typ:
secevent+jwt``, ``iss``, ``aud`` = this client, ``iat`` not in the future) and
applies the revocations it announces (docs/ssf.md "Mapping", read backwards)
to the same :class:`~authmesh.service._revocations.RevocationState` the
native feed fills. A SET that fails is refused with the RFC 8935 §2.4 error
code that says why (:class:`SetRefused`), which poll reports in ``setErrs``
and push in its 400 answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from authmesh.jose import TokenRejected, VerifyPolicy, verify_jwt
from authmesh.jose.policy import Clock
from authmesh.revocation import RevocationEvent
from authmesh.service._feed import FeedProcessor
from authmesh.service._jwks import JWKSCache

__all__ = [
    "ACCOUNT_DISABLED",
    "ACCOUNT_ENABLED",
    "CREDENTIAL_CHANGE",
    "EVENTS_REQUESTED",
    "SESSION_REVOKED",
    "SET_TYPES",
    "VERIFICATION",
    "Refusal",
    "SetReader",
    "SetRefused",
    "decode_set",
    "revocation_of",
]

log = logging.getLogger(__name__)

SET_TYPES = frozenset({"secevent+jwt", "application/secevent+jwt"})
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
ACCOUNT_ENABLED = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
#: What a receiver asks its stream for.
EVENTS_REQUESTED = [SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED, ACCOUNT_ENABLED]
#: ``jti``s remembered at most (SETs are few: a bound, not an expected size).
_MAX_SEEN = 100_000
#: RFC 8935 §2.4 error codes a refused SET is reported with, by rejection reason.
_ERROR_OF: Mapping[str, str] = {
    "wrong_issuer": "invalid_issuer",
    "wrong_audience": "invalid_audience",
    "bad_signature": "authentication_failed",
    "unknown_kid": "invalid_key",
    "alg_not_allowed": "invalid_key",
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a SET is refused: an RFC 8935 §2.4 ``err`` code and a ``description``."""

    err: str
    description: str

    def as_json(self) -> dict[str, str]:
        """``{"err", "description"}``, the shape of RFC 8935 §2.3 and RFC 8936 ``setErrs``."""
        return {"err": self.err, "description": self.description}


class SetRefused(Exception):
    """A SET that must not be applied; :attr:`refusal` says why."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.description)
        self.refusal = refusal

    @classmethod
    def of(cls, err: str, description: str) -> SetRefused:
        """A refusal with this code and description (cut to 200 characters)."""
        return cls(Refusal(err, description[:200]))


def set_policy(issuer: str, client_id: str, leeway: float) -> VerifyPolicy:
    """The rules of a SET for this receiver (RFC 8417 §2.2, SSF 1.0 §4)."""
    return VerifyPolicy(
        issuer=issuer,
        audience=frozenset({client_id}),
        types=SET_TYPES,
        required_claims=frozenset({"iss", "aud", "iat", "jti", "events"}),
        leeway=leeway,
    )


def decode_set(
    token: str, keys: JWKSCache, policy: VerifyPolicy, *, clock: Clock
) -> dict[str, Any]:
    """The claims of a SET whose signature, type, issuer and audience check out.

    Raises:
        TokenRejected: the SET is not acceptable (report it, never apply it).
    """
    return verify_jwt(token, keys, policy, clock=clock).claims


def numeric(value: object, default: float) -> float:
    """``value`` if it is a JSON number, else ``default``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default


def revocation_of(
    claims: Mapping[str, Any], *, issuer: str, retention: float
) -> list[RevocationEvent]:
    """The revocations a verified SET announces (docs/ssf.md "Mapping"); may be none.

    A user subject (``iss_sub``) revokes the user's tokens issued before the
    event's ``event_timestamp``; a session (a ``complex`` subject's
    ``session``) or a token (``jwt_id``) is revoked outright. Account-enabled,
    verification and event types or subjects this receiver does not know
    revoke nothing.
    """
    events = claims.get("events")
    if not isinstance(events, Mapping):
        return []
    iat = numeric(claims.get("iat"), time.time())
    subject = claims.get("sub_id")
    found: list[RevocationEvent] = []
    for event_type, payload in events.items():
        if event_type not in (SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED):
            continue
        body = payload if isinstance(payload, Mapping) else {}
        # Before SSF 1.0 the subject sat in the event; accept it there too.
        where = subject if isinstance(subject, Mapping) else body.get("subject")
        if not isinstance(where, Mapping):
            continue
        at = numeric(body.get("event_timestamp"), iat)
        kind_value = _kind_and_value(where, issuer, sessions=event_type == SESSION_REVOKED)
        if kind_value is None:
            continue
        kind, value = kind_value
        found.append(
            RevocationEvent(
                kind=kind,  # type: ignore[arg-type]
                value=value,
                not_before=at,
                expires_at=max(at, iat) + retention,
            )
        )
    return found


def _kind_and_value(
    subject: Mapping[str, Any], issuer: str, *, sessions: bool
) -> tuple[str, str] | None:
    fmt = subject.get("format")
    if fmt == "iss_sub" and subject.get("iss") == issuer and isinstance(subject.get("sub"), str):
        return "sub", subject["sub"]
    if not sessions:
        if fmt == "complex" and isinstance(subject.get("user"), Mapping):
            return _kind_and_value(subject["user"], issuer, sessions=False)
        return None
    if fmt == "jwt_id" and subject.get("iss") == issuer and isinstance(subject.get("jti"), str):
        return "jti", subject["jti"]
    if fmt == "complex":
        session = subject.get("session")
        if isinstance(session, Mapping) and session.get("format") == "opaque":
            sid = session.get("id")
            if isinstance(sid, str) and sid:
                return "sid", sid
        user = subject.get("user")
        if isinstance(user, Mapping):
            return _kind_and_value(user, issuer, sessions=False)
    return None


class SetReader:
    """Checks SETs against the issuer's JWKS and applies them to a feed processor's state.

    Args:
        processor: the revocation state and counters to feed.
        keys: the issuer's JWKS cache (the one access tokens are checked with).
        clock: wall-clock time (``iat``).
    """

    def __init__(self, processor: FeedProcessor, keys: JWKSCache, *, clock: Clock) -> None:
        config = processor.config
        assert config.client_id is not None
        self.processor = processor
        self.keys = keys
        self.clock = clock
        self.issuer = config.issuer
        self.policy = set_policy(config.issuer, config.client_id, config.leeway.total_seconds())
        #: How long a revocation learnt from a SET is held.
        self.retention = config.ssf_event_retention.total_seconds()
        self._seen: dict[str, float] = {}
        # Pushes come on request threads (Flask) while a catch-up polls on another.
        self._lock = threading.Lock()

    def check(self, token: str, *, jti: str | None = None) -> dict[str, Any]:
        """The claims of an acceptable SET (delivered under ``jti``, when one is given).

        Raises:
            UnknownKid: no key of the cached JWKS signed it (refresh, then ask again).
            SetRefused: anything else wrong with it; counted as ``ssf_set_<err>``.
        """
        try:
            claims = decode_set(token, self.keys, self.policy, clock=self.clock)
        except TokenRejected as exc:
            if exc.reason == "unknown_kid":
                raise
            raise self.refused(_ERROR_OF.get(exc.reason, "invalid_request"), str(exc)) from None
        events = claims.get("events")
        if not isinstance(events, Mapping) or not events:
            # RFC 8417 §2.2: a JSON object naming at least one event.
            raise self.refused("invalid_request", "the SET has no events object")
        if jti is not None and claims.get("jti") != jti:
            raise self.refused(
                "invalid_request", "the SET's jti is not the one it was delivered under"
            )
        return claims

    def refused(self, err: str, description: str) -> SetRefused:
        """A refusal, counted and logged (the transmitter is told; an operator should be too)."""
        log.warning("ssf: refused a SET (%s): %s", err, description[:200])
        self.processor.stats.rejected["ssf_set_" + err] += 1
        return SetRefused.of(err, description)

    def accept(self, claims: Mapping[str, Any], *, refuse_seen: bool) -> int:
        """Apply the revocations of a checked SET; returns how many it carried.

        Its ``jti`` is remembered for ``ssf_event_retention`` past its ``iat``.
        With ``refuse_seen`` (push: a SET comes once) one remembered already, or
        too old to be remembered, is refused; a poll stream hands out again what
        was not acknowledged, and applying a revocation twice does nothing.

        Raises:
            SetRefused: ``refuse_seen`` and a replay (or a SET older than the retention).
        """
        with self._lock:
            self._remember(claims, refuse_seen=refuse_seen)
            events = revocation_of(claims, issuer=self.issuer, retention=self.retention)
            for event in events:
                self.processor.state.apply(event)
                self.processor.stats.feed_events += 1
        return len(events)

    def _remember(self, claims: Mapping[str, Any], *, refuse_seen: bool) -> None:
        now = self.clock()
        iat = numeric(claims.get("iat"), 0.0)
        jti = str(claims.get("jti"))
        seen = self._seen
        if refuse_seen:
            if iat < now - self.retention:
                raise self.refused("invalid_request", "the SET is older than this receiver keeps")
            if jti in seen:
                raise self.refused("invalid_request", "this SET was received before (same jti)")
        if len(seen) >= _MAX_SEEN:
            # Forget the expired; else the oldest (a replayed revocation revokes nothing new).
            for old in [j for j, until in seen.items() if until < now] or list(seen)[:1000]:
                del seen[old]
        seen[jti] = iat + self.retention
