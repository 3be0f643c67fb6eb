"""A browser stand-in for the sign-in tests: cookies, forms and redirects by hand.

It speaks plain HTTP to the real server (no JavaScript is needed to sign in),
so each step's status, headers and cookies can be asserted. The browser tests
in ``tests/browser`` do the same in Chromium.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from authmesh.server import clients
from support.harness import Api

__all__ = ["PARTNER", "SPA", "Browser", "Pkce", "redirect_query", "register_browser_clients"]

SPA = "https://spa.example/callback"
PARTNER = "https://partner.example/cb"
_HIDDEN = re.compile(r'name="(csrf_token|request)" value="([^"]*)"')


@dataclass(frozen=True)
class Pkce:
    """A PKCE verifier and its S256 challenge."""

    verifier: str
    challenge: str

    @classmethod
    def make(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


def register_browser_clients(api: Api) -> str:
    """Register ``spa`` (public, first-party) and ``partner`` (confidential, third-party).

    Returns the secret of ``partner``.
    """

    async def register() -> str:
        await clients.register_client(
            api.core,
            client_id="spa",
            name="Orders SPA",
            public=True,
            grant_types=["authorization_code", "refresh_token"],
            scopes=["orders:read"],
            audiences=["orders"],
            redirect_uris=[SPA, "http://127.0.0.1/callback"],
            post_logout_redirect_uris=["https://spa.example/bye"],
        )
        partner = await clients.register_client(
            api.core,
            client_id="partner",
            name="Partner Reports",
            grant_types=["authorization_code"],
            scopes=["orders:read"],
            audiences=["orders"],
            redirect_uris=[PARTNER],
            first_party=False,
        )
        assert partner.secret is not None
        return partner.secret

    return api.server.call(register())


class Browser:
    """One browser: a cookie jar, no automatic redirects."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.http = httpx.Client(base_url=api.url, follow_redirects=False, timeout=15)
        self.pkce = Pkce.make()

    def close(self) -> None:
        self.http.close()

    def authorize(
        self, client_id: str = "spa", redirect_uri: str = SPA, **params: str
    ) -> httpx.Response:
        """``GET /authorize`` with a fresh PKCE challenge and ``state=xyz``."""
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid profile email orders:read",
            "state": "xyz",
            "nonce": "n-0S6_WzA2Mj",
            "code_challenge": self.pkce.challenge,
            "code_challenge_method": "S256",
            **params,
        }
        return self.http.get("/authorize", params={k: v for k, v in query.items() if v})

    @staticmethod
    def hidden(page: httpx.Response) -> dict[str, str]:
        """The hidden fields of the page's form."""
        return {name: html.unescape(value) for name, value in _HIDDEN.findall(page.text)}

    def submit_login(self, page: httpx.Response, username: str, password: str) -> httpx.Response:
        """Fill in and post the sign-in form."""
        assert page.status_code == 200 and 'action="/login"' in page.text, page.text
        return self.http.post(
            "/login", data={**self.hidden(page), "username": username, "password": password}
        )

    def submit_consent(self, page: httpx.Response, decision: str) -> httpx.Response:
        """Answer the consent form."""
        assert page.status_code == 200 and 'action="/consent"' in page.text, page.text
        return self.http.post("/consent", data={**self.hidden(page), "decision": decision})

    def sign_in(self, username: str, password: str, **params: str) -> dict[str, str]:
        """Authorize, sign in unless the SSO session answers, and return the redirect's query."""
        page = self.authorize(**params)
        if page.status_code == 302:
            return redirect_query(page)
        done = self.submit_login(page, username, password)
        assert done.status_code == 303, done.text
        return redirect_query(done)

    def exchange(
        self, code: str, *, client_id: str = "spa", redirect_uri: str = SPA, **extra: str
    ) -> httpx.Response:
        """The code at the token endpoint, with this browser's verifier."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "code_verifier": self.pkce.verifier,
            **extra,
        }
        return self.api.token({k: v for k, v in form.items() if v})

    def tokens(self, username: str, password: str, **params: str) -> dict[str, Any]:
        """Sign in and exchange the code; asserts success."""
        query = self.sign_in(username, password, **params)
        response = self.exchange(query["code"])
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def redirect_query(response: httpx.Response) -> dict[str, str]:
    """The query parameters of a redirect's ``Location``."""
    location = response.headers["location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
