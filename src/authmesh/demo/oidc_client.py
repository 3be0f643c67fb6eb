"""The demo web app's side of OpenID Connect: a confidential client with PKCE and DPoP.

Written against the standards only (discovery, the authorization code grant,
ID token rules, DPoP), the way any relying party would be. Its token requests
carry a DPoP proof by the web app's own key, so the users' access tokens it
holds are bound to that key: one copied out of it is useless elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from authmesh.dpop import make_proof
from authmesh.jose import Key, KeySet, TokenRejected, VerifyPolicy, verify_jwt

__all__ = ["LoginStart", "OIDCClient", "SignInFailed", "Tokens"]


class SignInFailed(Exception):
    """The provider's answer cannot be trusted or used."""


@dataclass(frozen=True, slots=True)
class LoginStart:
    """What the app remembers between sending the user off and their return."""

    url: str
    state: str
    nonce: str
    verifier: str


@dataclass(slots=True)
class Tokens:
    """A signed-in user's tokens and who they are."""

    access_token: str
    refresh_token: str | None
    id_token: str
    subject: str
    username: str
    token_type: str = "Bearer"


class OIDCClient:
    """Discovery, the authorization request, the code exchange and the refresh."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        dpop_key: Key | None = None,
    ) -> None:
        self.issuer = issuer
        #: The key the users' tokens are bound to (DPoP, RFC 9449); ``None``: bearer tokens.
        self.dpop_key = dpop_key
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self._http = httpx.AsyncClient(auth=(client_id, client_secret), timeout=5.0)
        self._metadata: dict[str, Any] | None = None

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (fetched once)."""
        if self._metadata is None:
            response = await self._http.get(f"{self.issuer}/.well-known/openid-configuration")
            response.raise_for_status()
            self._metadata = response.json()
        return self._metadata

    async def start(self, scope: str) -> LoginStart:
        """A fresh authorization request with state, nonce and a PKCE S256 challenge."""
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
        endpoint = (await self.metadata())["authorization_endpoint"]
        return LoginStart(f"{endpoint}?{urlencode(query)}", state, nonce, verifier)

    async def finish(self, start: LoginStart, *, code: str, state: str) -> Tokens:
        """Exchange the code and check the ID token (issuer, audience, signature, nonce).

        Raises:
            SignInFailed: a state mismatch, a refused code or a bad ID token.
        """
        if not secrets.compare_digest(state.encode("utf-8", "surrogatepass"), start.state.encode()):
            raise SignInFailed("the answer does not belong to this sign-in (state)")
        body = await self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": start.verifier,
            }
        )
        claims = await self._id_token_claims(body.get("id_token", ""))
        if claims.get("nonce") != start.nonce:
            raise SignInFailed("the ID token was not made for this sign-in (nonce)")
        return Tokens(
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token"),
            id_token=body["id_token"],
            subject=claims["sub"],
            username=str(claims.get("preferred_username", claims["sub"])),
            token_type=str(body.get("token_type", "Bearer")),
        )

    async def refresh(self, tokens: Tokens) -> bool:
        """Swap the refresh token for new tokens; ``False`` once the session has ended."""
        if tokens.refresh_token is None:
            return False
        try:
            body = await self._token(
                {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
            )
        except SignInFailed:
            return False
        tokens.access_token = body["access_token"]
        tokens.refresh_token = body.get("refresh_token", tokens.refresh_token)
        tokens.token_type = str(body.get("token_type", "Bearer"))
        return True

    def authorization(self, tokens: Tokens, method: str, url: str) -> dict[str, str]:
        """The headers that present ``tokens`` to a service: a DPoP proof with a bound token."""
        if tokens.token_type.lower() != "dpop" or self.dpop_key is None:
            return {"Authorization": f"Bearer {tokens.access_token}"}
        proof = make_proof(self.dpop_key, method=method, url=url, access_token=tokens.access_token)
        return {"Authorization": f"DPoP {tokens.access_token}", "DPoP": proof}

    async def logout_url(self, tokens: Tokens, post_logout_redirect_uri: str) -> str:
        """Where to send the browser to end the provider's session too."""
        endpoint = (await self.metadata())["end_session_endpoint"]
        query = {
            "id_token_hint": tokens.id_token,
            "post_logout_redirect_uri": post_logout_redirect_uri,
        }
        return f"{endpoint}?{urlencode(query)}"

    async def _token(self, form: dict[str, str]) -> dict[str, Any]:
        endpoint = (await self.metadata())["token_endpoint"]
        headers = {}
        if self.dpop_key is not None:
            headers["DPoP"] = make_proof(self.dpop_key, method="POST", url=endpoint)
        response = await self._http.post(endpoint, data=form, headers=headers)
        if response.status_code != 200:
            raise SignInFailed(f"the token endpoint refused: {response.text[:200]}")
        body: dict[str, Any] = response.json()
        return body

    async def _id_token_claims(self, id_token: str) -> dict[str, Any]:
        response = await self._http.get((await self.metadata())["jwks_uri"])
        policy = VerifyPolicy(
            issuer=self.issuer,
            audience=frozenset({self.client_id}),
            types=frozenset({"JWT"}),
            required_claims=frozenset({"iss", "sub", "aud", "exp", "iat"}),
        )
        try:
            return verify_jwt(id_token, KeySet.from_jwks(response.json()), policy).claims
        except TokenRejected as exc:
            raise SignInFailed(f"the ID token was refused: {exc}") from None

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()
