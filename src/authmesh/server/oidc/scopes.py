"""Scopes a browser client may ask for: its own, plus the OpenID Connect ones."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["OIDC_SCOPES", "allowed_scopes", "resolve_requested_scope"]

#: OpenID Connect Core §5.4: every client that signs users in may ask for these.
OIDC_SCOPES = ("openid", "profile", "email")


def allowed_scopes(client_scopes: Sequence[str]) -> list[str]:
    """Everything a browser client may be granted."""
    return sorted(set(client_scopes) | set(OIDC_SCOPES))


def resolve_requested_scope(requested: str | None, client_scopes: Sequence[str]) -> str:
    """The scope to grant, else ``ValueError`` naming what the client may not have.

    Without a ``scope`` parameter the client gets its own scopes and ``openid``.
    """
    if requested is None:
        return " ".join(sorted({*client_scopes, "openid"}))
    wanted = set(requested.split())
    extra = sorted(wanted - set(allowed_scopes(client_scopes)))
    if extra:
        raise ValueError(f"scope not allowed for this client: {' '.join(extra)[:200]}")
    return " ".join(sorted(wanted))
