"""Revocations as Security Event Tokens (RFC 8417) carrying CAEP and RISC events.

Every revocation the server writes has a *reason* (block, password change,
logout...). :func:`signals_for` maps a reason and the revocation's kind onto one
CAEP or RISC event about an RFC 9493 subject, and :func:`mint_set` signs it for
one stream's audience. The mapping is documented in docs/ssf.md; the SDK's
receiver (``authmesh.service._ssf_receiver``) reads it back.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from authmesh.jose import Key, sign_jwt

__all__ = [
    "ACCOUNT_DISABLED",
    "ACCOUNT_ENABLED",
    "CREDENTIAL_CHANGE",
    "EVENT_TYPES",
    "SESSION_REVOKED",
    "SET_TYPE",
    "VERIFICATION",
    "RevocationReason",
    "Signal",
    "account_enabled_signal",
    "mint_set",
    "signals_for",
    "verification_signal",
]

SET_TYPE = "secevent+jwt"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
ACCOUNT_ENABLED = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
#: The event types a stream can ask for (the verification event is always delivered).
EVENT_TYPES: tuple[str, ...] = (
    SESSION_REVOKED,
    CREDENTIAL_CHANGE,
    ACCOUNT_DISABLED,
    ACCOUNT_ENABLED,
)

RevocationReason = Literal[
    "block",
    "unblock",
    "password_change",
    "logout",
    "logout_all",
    "force_logout",
    "token_revocation",
    "refresh_reuse",
    "code_replay",
    "consent_revoked",
    "role_change",
    "client_removed",
    "revoked",
]

#: CAEP ``initiating_entity`` of each reason: who or what caused it.
_INITIATOR: Mapping[str, str] = {
    "block": "admin",
    "unblock": "admin",
    "password_change": "user",
    "logout": "user",
    "logout_all": "user",
    "force_logout": "admin",
    "token_revocation": "user",
    "refresh_reuse": "policy",
    "code_replay": "policy",
    "consent_revoked": "user",
    "role_change": "admin",
    "client_removed": "admin",
    "revoked": "system",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Signal:
    """One event about one subject, before it is signed for a stream."""

    event_type: str
    subject: dict[str, Any]
    payload: dict[str, Any] = field(default_factory=dict)


def _user(issuer: str, sub: str) -> dict[str, str]:
    return {"format": "iss_sub", "iss": issuer, "sub": sub}


def signals_for(
    reason: RevocationReason,
    kind: str,
    value: str,
    *,
    issuer: str,
    timestamp: float,
    user_of_session: str | None = None,
) -> Signal:
    """The event a revocation of ``kind``/``value`` for ``reason`` is announced as.

    ``timestamp`` is the event's ``not_before`` for a ``sub`` revocation (tokens
    issued before it are revoked) and its creation time otherwise.
    ``user_of_session`` names the user of a revoked session, when known.
    """
    subject: dict[str, Any]
    common: dict[str, Any] = {
        "event_timestamp": timestamp,
        "initiating_entity": _INITIATOR.get(reason, "system"),
        "reason_admin": {"en": reason.replace("_", " ")},
    }
    if kind == "sub":
        subject = _user(issuer, value)
        if reason == "block":
            return Signal(event_type=ACCOUNT_DISABLED, subject=subject, payload=common)
        if reason == "password_change":
            payload = {**common, "credential_type": "password", "change_type": "update"}
            return Signal(event_type=CREDENTIAL_CHANGE, subject=subject, payload=payload)
        # A user subject with no session: every session of the user (CAEP §3.1).
        return Signal(event_type=SESSION_REVOKED, subject=subject, payload=common)
    if kind == "sid":
        subject = {"format": "complex", "session": {"format": "opaque", "id": value}}
        if user_of_session is not None:
            subject["user"] = _user(issuer, user_of_session)
        return Signal(event_type=SESSION_REVOKED, subject=subject, payload=common)
    if kind == "jti":
        # SSF 1.0 §3.2 "jwt_id": the one access token this id names.
        subject = {"format": "jwt_id", "iss": issuer, "jti": value}
        return Signal(event_type=SESSION_REVOKED, subject=subject, payload=common)
    raise ValueError(f"unknown revocation kind {kind!r}")


def account_enabled_signal(issuer: str, sub: str, *, timestamp: float) -> Signal:
    """RISC account-enabled: an unblock (nothing to revoke; receivers may lift their own holds)."""
    payload = {"event_timestamp": timestamp, "initiating_entity": "admin"}
    return Signal(event_type=ACCOUNT_ENABLED, subject=_user(issuer, sub), payload=payload)


def verification_signal(stream_id: str, state: str | None) -> Signal:
    """SSF §8.1.4.2: the verification event a receiver asked for, echoing its ``state``."""
    payload = {} if state is None else {"state": state}
    return Signal(
        event_type=VERIFICATION, subject={"format": "opaque", "id": stream_id}, payload=payload
    )


def mint_set(
    signal: Signal, *, issuer: str, audience: list[str], key: Key, now: float
) -> tuple[str, str]:
    """Sign ``signal`` as a SET for ``audience``; returns its ``jti`` and the token.

    The subject is the top-level ``sub_id`` claim (SSF 1.0 §4.1.1, RFC 9493 §4),
    and the event object carries the event-specific members only.
    """
    jti = uuid.uuid4().hex
    claims = {
        "iss": issuer,
        "aud": audience[0] if len(audience) == 1 else audience,
        "jti": jti,
        "iat": int(now),
        "sub_id": signal.subject,
        "events": {signal.event_type: dict(signal.payload)},
    }
    return jti, sign_jwt(claims, key, typ=SET_TYPE)
