"""Tokens as the real auth server issues them, signed with a test key.

Access tokens follow RFC 9068 and the claims of docs/architecture.md. id_tokens
(OpenID Connect Core §2, ``aud`` = the client id, their own ``typ``) arrive with
browser sign-in; their minting belongs here, beside :func:`mint_access_token`,
so that a test can check that neither is accepted as the other.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

from authmesh.jose import Key, sign_jwt

__all__ = ["ACCESS_TOKEN_TYP", "mint_access_token", "scope_string"]

#: The ``typ`` header of access tokens (RFC 9068 §2.1).
ACCESS_TOKEN_TYP = "at+jwt"


def scope_string(scope: str | Iterable[str]) -> str:
    """The ``scope`` claim (space-separated, RFC 6749 §3.3) from a string or names."""
    return scope if isinstance(scope, str) else " ".join(scope)


def mint_access_token(
    key: Key,
    *,
    issuer: str,
    sub: str,
    audience: str | list[str],
    roles: Iterable[str] = (),
    scope: str | Iterable[str] = "",
    sid: str | None = None,
    client_id: str = "web",
    lifetime: float = 300,
    iat: float | None = None,
    **extra: Any,
) -> str:
    """An RFC 9068 access token signed with ``key``.

    Args:
        sub: the subject (a user id, or the client id for client_credentials).
        audience: the service(s) the token is for.
        roles: the ``roles`` claim.
        scope: the ``scope`` claim, a space-separated string or the scope names.
        sid: the session id; ``None`` for a token without a session (a service's).
        lifetime: seconds from ``iat`` to ``exp``.
        iat: the issue time (default now); ``nbf`` and ``auth_time`` follow it.
        extra: more claims, or replacements for the ones above.
    """
    now = time.time() if iat is None else iat
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": sub,
        "aud": audience,
        "iat": int(now),
        "nbf": int(now),
        "exp": int(now + lifetime),
        "jti": uuid.uuid4().hex,
        "client_id": client_id,
        "scope": scope_string(scope),
        "roles": list(roles),
    }
    if sid is not None:
        claims["sid"] = sid
        claims["auth_time"] = int(now)
    claims.update(extra)
    return sign_jwt(claims, key, typ=ACCESS_TOKEN_TYP)
