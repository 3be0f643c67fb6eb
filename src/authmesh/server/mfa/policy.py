"""Who must use a second factor, and what a sign-in's methods amount to."""

from __future__ import annotations

from collections.abc import Iterable

from authmesh.acr import MFA, acr_for_amr, satisfies
from authmesh.server.config import ServerSettings

__all__ = ["amr_with", "mfa_required", "wants_mfa"]


def mfa_required(settings: ServerSettings, roles: Iterable[str]) -> bool:
    """Whether a user with these roles must sign in with a second factor."""
    return not set(settings.mfa_required_roles).isdisjoint(roles)


def wants_mfa(acr_values: Iterable[str], amr: Iterable[str]) -> bool:
    """Whether a request's ``acr_values`` ask for more than these methods reach."""
    wanted = list(acr_values)
    if not wanted or MFA not in wanted:
        return False
    return not satisfies(acr_for_amr(amr), wanted)


def amr_with(amr: Iterable[str], *methods: str) -> list[str]:
    """``amr`` plus ``methods``, and ``mfa`` once two kinds of factor are in."""
    merged = list(dict.fromkeys([*amr, *methods]))
    if acr_for_amr(merged) == MFA and "mfa" not in merged:
        merged.append("mfa")
    return merged
