"""ID tokens (OpenID Connect Core §2) and the claims a user's scopes release."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from authmesh.acr import acr_for_amr
from authmesh.jose import sign_jwt
from authmesh.server.context import ServerContext
from authmesh.store.models import UserRow

__all__ = ["ID_TOKEN_TYPE", "mint_id_token", "token_hash", "user_claims"]

#: ``typ`` of ID tokens: services accept only ``at+jwt``, so neither passes for the other.
ID_TOKEN_TYPE = "JWT"


def token_hash(token: str, alg: str) -> str:
    """``at_hash``/``c_hash``: the left half of the token's hash (OIDC Core §3.1.3.6).

    The hash is the one of the signing algorithm: SHA-256 for ``*256``, SHA-512
    for EdDSA with Ed25519.
    """
    digest = (hashlib.sha512 if alg == "EdDSA" else hashlib.sha256)(token.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def user_claims(user: UserRow, scopes: Sequence[str]) -> dict[str, object]:
    """The standard claims about the user that these scopes release (OIDC Core §5.4)."""
    claims: dict[str, object] = {}
    if "profile" in scopes:
        claims["preferred_username"] = user.username
        claims["name"] = user.username
    if "email" in scopes and user.email:
        claims["email"] = user.email
        claims["email_verified"] = False
    return claims


def mint_id_token(
    ctx: ServerContext,
    *,
    user: UserRow,
    client_id: str,
    session_id: str,
    auth_time: float,
    amr: Sequence[str],
    nonce: str | None,
    scopes: Sequence[str],
    access_token: str,
) -> str:
    """Sign the ID token of a code exchange with the server's active key."""
    key = ctx.keys.signing_key()
    now = int(ctx.now())
    claims: dict[str, object] = {
        "iss": ctx.issuer.issuer,
        "sub": user.id,
        "aud": client_id,
        "azp": client_id,
        "exp": now + ctx.settings.access_token_ttl,
        "iat": now,
        "auth_time": int(auth_time),
        "sid": session_id,
        "amr": list(amr),
        "acr": acr_for_amr(amr),
        "at_hash": token_hash(access_token, key.alg),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    claims.update(user_claims(user, scopes))
    return sign_jwt(claims, key, typ=ID_TOKEN_TYPE)
