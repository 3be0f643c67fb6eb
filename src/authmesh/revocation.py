"""Wire format of a revocation event, shared by the feed producer and the SDK.

This module imports nothing from authmesh so that both the server and the
service SDK can depend on it.

An event covers every access token that carries:

* ``kind="sub"``: the subject ``value`` and was issued (``iat``) before ``not_before``;
* ``kind="sid"``: the session id ``value`` (any issue time);
* ``kind="jti"``: the token id ``value``.

``expires_at`` is the time after which no token the event covers can still be
valid (its creation plus the longest access-token lifetime and the leeway), so
a holder may drop the event from then on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, cast

__all__ = ["KINDS", "RevocationEvent", "RevocationEventJSON", "RevocationKind"]

RevocationKind = Literal["sub", "sid", "jti"]
KINDS: frozenset[str] = frozenset({"sub", "sid", "jti"})


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
        if self.kind == "sub":
            iat = claims.get("iat")
            if claims.get("sub") != self.value:
                return False
            # A token without a usable iat cannot prove it came after the event.
            return not isinstance(iat, int | float) or iat < self.not_before
        if self.kind == "sid":
            return claims.get("sid") == self.value
        return claims.get("jti") == self.value

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
