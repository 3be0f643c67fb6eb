"""Authentication context classes (``acr``) and methods (``amr``), shared by server and SDK.

authmesh names two levels: ``pwd`` (one factor) and ``mfa`` (two factors, or a
passkey with user verification, which is possession plus a PIN or biometric).
A token whose ``acr`` is a level at or above the one demanded satisfies it.
``amr`` values are those of RFC 8176: ``pwd``, ``otp`` (TOTP or a recovery
code), ``hwk``/``swk`` (a device-bound or a synced passkey), ``user`` (user
verification by the authenticator) and ``mfa``.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ACR_LEVELS", "MFA", "PWD", "acr_for_amr", "satisfies"]

PWD = "pwd"
MFA = "mfa"
#: The levels, weakest first.
ACR_LEVELS: tuple[str, ...] = (PWD, MFA)
_FACTORS = frozenset({"otp", "hwk", "swk"})


def acr_for_amr(amr: Iterable[str]) -> str:
    """The level that these authentication methods reach."""
    methods = set(amr)
    if "mfa" in methods or ("pwd" in methods and methods & _FACTORS):
        return MFA
    if methods & {"hwk", "swk"} and "user" in methods:
        return MFA
    return PWD


def satisfies(acr: object, wanted: Iterable[str]) -> bool:
    """Whether a token's ``acr`` meets at least one of the ``wanted`` levels.

    An unknown level in ``wanted`` is met only by that exact value.
    """
    if not isinstance(acr, str):
        return False
    for level in wanted:
        if acr == level:
            return True
        if acr in ACR_LEVELS and level in ACR_LEVELS:
            if ACR_LEVELS.index(acr) >= ACR_LEVELS.index(level):
                return True
    return False
