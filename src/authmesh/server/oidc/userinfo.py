"""The userinfo response (OpenID Connect Core §5.3): claims by the token's scopes."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from authmesh.server.context import ServerContext
from authmesh.server.oidc.id_tokens import user_claims
from authmesh.store import users as user_store

__all__ = ["userinfo_claims"]


async def userinfo_claims(
    ctx: ServerContext,
    *,
    subject: str,
    username: str | None,
    roles: Collection[str],
    scopes: Collection[str],
) -> dict[str, Any]:
    """``sub`` and ``roles`` always; with ``openid``, what ``profile``/``email`` release.

    A token without ``openid`` (the password grant's) gets ``preferred_username``
    from the token itself.
    """
    body: dict[str, Any] = {"sub": subject, "roles": sorted(roles)}
    if "openid" not in scopes:
        if username is not None:
            body["preferred_username"] = username
        return body
    async with ctx.db.transaction() as session:
        user = await user_store.get_user_by_id(session, subject)
    if user is not None:
        body.update(user_claims(user, list(scopes)))
    return body
