"""Wire format of a revocation event, shared by the feed producer and the SDK.

This module imports nothing from authmesh so that both the server and the
service SDK can depend on it.

It also states, once, which tokens an event revokes. An event covers every
access token whose claim :data:`CLAIM_OF` its ``kind`` equals its ``value``:

* ``kind="sub"``: the subject, and only tokens issued (``iat``) before
  ``not_before`` (the kinds in :data:`ISSUED_BEFORE`);
* ``kind="sid"``: the session id, at any issue time;
* ``kind="jti"``: the token id.

A token without a usable ``iat`` cannot prove it came after an event, so
:func:`issued_at` reads it as minus infinity. The SDK's in-memory index
(``authmesh.service``) and the server's query (``authmesh.store.revocations``)
are built from these definitions.

``expires_at`` is the time after which no token the event covers can still be
valid (its creation plus the longest access-token lifetime and the leeway), so
a holder may drop the event from then on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, TypedDict, cast

__all__ = [
    "CLAIM_OF",
    "ISSUED_BEFORE",
    "KINDS",
    "RevocationEvent",
    "RevocationEventJSON",
    "RevocationKind",
    "issued_at",
    "revocation_keys",
]

RevocationKind = Literal["sub", "sid", "jti"]
KINDS: frozenset[str] = frozenset({"sub", "sid", "jti"})
#: The token claim an event of each kind names with its ``value``.
CLAIM_OF: Mapping[RevocationKind, str] = MappingProxyType(
    {"sub": "sub", "sid": "sid", "jti": "jti"}
)
#: Kinds that cover only the tokens issued before the event's ``not_before``.
ISSUED_BEFORE: frozenset[RevocationKind] = frozenset({"sub"})


def issued_at(claims: Mapping[str, Any]) -> float:
    """The ``iat`` an event's ``not_before`` is compared with; minus infinity when unusable."""
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        return -math.inf
    return float(iat)


def revocation_keys(claims: Mapping[str, Any]) -> list[tuple[RevocationKind, str]]:
    """The ``(kind, value)`` of every event that could cover a token with these claims."""
    keys: list[tuple[RevocationKind, str]] = []
    for kind, claim in CLAIM_OF.items():
        value = claims.get(claim)
        if isinstance(value, str):
            keys.append((kind, value))
    return keys


class RevocationEventJSON(TypedDict):
    """The JSON object of one event on the feed."""

    cursor: int
    kind: str
    value: str
    not_before: float
    expires_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationEvent:
    """One revocation: a subject, a session or a single token."""

    kind: RevocationKind
    value: str
    not_before: float
    expires_at: float
    cursor: int = 0

    def covers(self, claims: Mapping[str, Any]) -> bool:
        """Whether a token with these claims is revoked by this event."""
        if claims.get(CLAIM_OF[self.kind]) != self.value:
            return False
        return self.kind not in ISSUED_BEFORE or issued_at(claims) < self.not_before

    def to_json(self) -> RevocationEventJSON:
        """The event as sent on the feed."""
        return {
            "cursor": self.cursor,
            "kind": self.kind,
            "value": self.value,
            "not_before": self.not_before,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RevocationEvent:
        """Parse one event from the feed.

        Raises:
            ValueError: a member is missing or of the wrong type.
        """
        kind = data.get("kind")
        value = data.get("value")
        cursor = data.get("cursor")
        if kind not in KINDS or not isinstance(value, str) or not value:
            raise ValueError("revocation event needs a kind of sub/sid/jti and a value")
        if not isinstance(cursor, int) or isinstance(cursor, bool) or cursor < 0:
            raise ValueError("revocation event needs a non-negative integer cursor")
        times = []
        for name in ("not_before", "expires_at"):
            t = data.get(name)
            if not isinstance(t, int | float) or isinstance(t, bool) or not math.isfinite(t):
                raise ValueError(f"revocation event needs a numeric {name}")
            times.append(float(t))
        return cls(
            kind=cast(RevocationKind, kind),
            value=value,
            not_before=times[0],
            expires_at=times[1],
            cursor=cursor,
        )
