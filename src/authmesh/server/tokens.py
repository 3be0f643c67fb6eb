"""Minting RFC 9068 access tokens."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from authmesh.jose import sign_jwt
from authmesh.jose.policy import Clock
from authmesh.server.keys import KeyManager

__all__ = ["AccessToken", "TokenIssuer"]


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A signed access token with what the token response reports of it."""

    token: str
    expires_in: int
    jti: str


class TokenIssuer:
    """Signs access tokens with the currently active key."""

    def __init__(self, *, issuer: str, keys: KeyManager, lifetime: int, clock: Clock) -> None:
        self.issuer = issuer
        self.lifetime = lifetime
        self._keys = keys
        self._clock = clock

    def access_token(
        self,
        *,
        subject: str,
        client_id: str,
        audiences: Sequence[str],
        scope: str,
        roles: Sequence[str],
        session_id: str | None = None,
        auth_time: float | None = None,
        username: str | None = None,
        actor: Mapping[str, object] | None = None,
        expires_by: int | None = None,
        dpop_jkt: str | None = None,
    ) -> AccessToken:
        """Sign an access token (``typ: at+jwt``) for a user session or a client.

        ``actor`` is the ``act`` claim of a delegated token (RFC 8693 §4.1);
        ``expires_by`` caps its expiry, so an exchanged token outlives no token it came from.
        ``dpop_jkt`` binds the token to a DPoP key (``cnf.jkt``, RFC 9449 §6).
        """
        now = int(self._clock())
        jti = str(uuid.uuid4())
        exp = now + self.lifetime if expires_by is None else min(now + self.lifetime, expires_by)
        claims: dict[str, object] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audiences[0] if len(audiences) == 1 else list(audiences),
            "exp": exp,
            "iat": now,
            "nbf": now,
            "jti": jti,
            "client_id": client_id,
            "scope": scope,
            "roles": list(roles),
        }
        if session_id is not None:
            claims["sid"] = session_id
        if auth_time is not None:
            claims["auth_time"] = int(auth_time)
        if username is not None:
            claims["preferred_username"] = username
        if actor is not None:
            claims["act"] = dict(actor)
        if dpop_jkt is not None:
            claims["cnf"] = {"jkt": dpop_jkt}
        token = sign_jwt(claims, self._keys.signing_key(), typ="at+jwt")
        return AccessToken(token=token, expires_in=exp - now, jti=jti)
