"""Registered-claim checks (RFC 7519 §4.1) under a :class:`VerifyPolicy`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from authmesh.jose.errors import (
    InvalidClaim,
    IssuedInFuture,
    MissingClaim,
    TokenExpired,
    TokenNotYetValid,
    WrongAudience,
    WrongIssuer,
)
from authmesh.jose.policy import VerifyPolicy

__all__ = ["check_claims"]

_STRING_CLAIMS = ("iss", "sub", "jti", "client_id", "sid", "scope")


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    # bool is an int in Python, and a NumericDate of true is nonsense. A present
    # null is no date either: read as absent, `"exp": null` would never expire.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidClaim(f"the '{name}' claim must be a number")
    try:
        date = float(value)
    except OverflowError:  # an int beyond float range
        raise InvalidClaim(f"the '{name}' claim is out of range") from None
    # JSON's 1e400 parses to inf: an exp that never comes, an nbf that always has.
    if not math.isfinite(date):
        raise InvalidClaim(f"the '{name}' claim is out of range")
    return date


def check_claims(claims: Mapping[str, Any], policy: VerifyPolicy, now: float) -> None:
    """Apply the policy's claim rules; raise the first failure.

    Raises:
        TokenRejected: a subclass naming the rule that failed.
    """
    for name in policy.required_claims:
        if name not in claims:
            raise MissingClaim(f"the token lacks the required '{name}' claim")
    for name in _STRING_CLAIMS:
        if name in claims and not isinstance(claims[name], str):
            raise InvalidClaim(f"the '{name}' claim must be a string")

    leeway = policy.leeway
    exp = _numeric_date(claims, "exp")
    if exp is not None and now >= exp + leeway:
        raise TokenExpired()
    nbf = _numeric_date(claims, "nbf")
    if nbf is not None and now + leeway < nbf:
        raise TokenNotYetValid()
    iat = _numeric_date(claims, "iat")
    if iat is not None and iat > now + leeway:
        raise IssuedInFuture()

    if policy.issuer is not None and claims.get("iss") != policy.issuer:
        raise WrongIssuer()
    if policy.audience is not None:
        aud = claims.get("aud")
        if isinstance(aud, str):
            ok = aud in policy.audience
        elif isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
            ok = not policy.audience.isdisjoint(aud)
        elif "aud" not in claims:
            raise MissingClaim("the token lacks the required 'aud' claim")
        else:
            raise InvalidClaim("the 'aud' claim must be a string or a list of strings")
        if not ok:
            raise WrongAudience()
