"""Registered-claim checks (RFC 7519 §4.1) under a :class:`VerifyPolicy`.

This runs on every first-seen token, so the common case (claims decoded from
JSON, every rule passing) takes the shortest path: exact-type tests instead of
``isinstance`` against unions, one subset test for the required claims. Every
rule is still applied to every token; the slower code only runs to name a failure.
"""

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
_ABSENT_STRINGS = ("",) * len(_STRING_CLAIMS)
_ALL_STR = (str,) * len(_STRING_CLAIMS)
_isfinite = math.isfinite


def _date_value(name: str, value: Any) -> float:
    kind = type(value)
    if kind is float:  # what JSON gives for 1.5 or 1e400
        if _isfinite(value):
            return value  # type: ignore[no-any-return]
    elif kind is not int:
        # bool is an int in Python, and a NumericDate of true is nonsense. A present
        # null is no date either: read as absent, `"exp": null` would never expire.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidClaim(f"the '{name}' claim must be a number")
    try:
        date = float(value)
    except OverflowError:  # an int beyond float range
        raise InvalidClaim(f"the '{name}' claim is out of range") from None
    # JSON's 1e400 parses to inf: an exp that never comes, an nbf that always has.
    if not _isfinite(date):
        raise InvalidClaim(f"the '{name}' claim is out of range")
    return date


def _missing(claims: Mapping[str, Any], policy: VerifyPolicy) -> MissingClaim:
    for name in policy.required_claims:
        if name not in claims:
            return MissingClaim(f"the token lacks the required '{name}' claim")
    raise AssertionError("no required claim is missing")  # pragma: no cover


def _check_strings(claims: Mapping[str, Any]) -> None:
    for name in _STRING_CLAIMS:
        if name in claims and not isinstance(claims[name], str):
            raise InvalidClaim(f"the '{name}' claim must be a string")


def _check_dates(
    claims: Mapping[str, Any], leeway: float, now: float, *, strict: bool = False
) -> None:
    """``exp``, ``nbf``, ``iat``: an int (what JSON gives) only needs ``float()``,
    which raises OverflowError beyond float range; anything else, and everything
    when ``strict``, goes through :func:`_date_value`, which names the problem."""
    get = claims.get
    exp = get("exp")
    if exp is not None or "exp" in claims:
        exp = _date_value("exp", exp) if strict or type(exp) is not int else float(exp)
        if now >= exp + leeway:
            raise TokenExpired()
    nbf = get("nbf")
    if nbf is not None or "nbf" in claims:
        nbf = _date_value("nbf", nbf) if strict or type(nbf) is not int else float(nbf)
        if now + leeway < nbf:
            raise TokenNotYetValid()
    iat = get("iat")
    if iat is not None or "iat" in claims:
        iat = _date_value("iat", iat) if strict or type(iat) is not int else float(iat)
        if iat > now + leeway:
            raise IssuedInFuture()


def check_claims(claims: Mapping[str, Any], policy: VerifyPolicy, now: float) -> None:
    """Apply the policy's claim rules; raise the first failure.

    Raises:
        TokenRejected: a subclass naming the rule that failed.
    """
    if not claims.keys() >= policy.required_claims:
        raise _missing(claims, policy)
    get = claims.get
    # The type of each string claim, "" standing in for an absent one: all str
    # in the common case, checked in one comparison (the loop names a failure).
    if tuple(map(type, map(get, _STRING_CLAIMS, _ABSENT_STRINGS))) != _ALL_STR:
        _check_strings(claims)

    try:
        _check_dates(claims, policy.leeway, now)
    except OverflowError:  # an int date beyond float range: name it
        _check_dates(claims, policy.leeway, now, strict=True)

    if policy.issuer is not None and get("iss") != policy.issuer:
        raise WrongIssuer()
    audience = policy.audience
    if audience is not None:
        aud = get("aud")
        if isinstance(aud, str):
            ok = aud in audience
        elif isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
            ok = not audience.isdisjoint(aud)
        elif "aud" not in claims:
            raise MissingClaim("the token lacks the required 'aud' claim")
        else:
            raise InvalidClaim("the 'aud' claim must be a string or a list of strings")
        if not ok:
            raise WrongAudience()
