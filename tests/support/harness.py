"""A client of the real auth server for the integration tests.

:func:`launch` starts the server (uvicorn on a free loopback port, in a thread)
on a test database, seeds the demo accounts, and returns an :class:`Api`: an
httpx client plus small helpers for the calls every test makes.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from authmesh.jose import KeySet, VerifyPolicy, verify_jwt
from authmesh.server import accounts
from authmesh.server.context import ServerContext
from authmesh.testing.authserver import AuthServerThread, seed_demo, settings_for
from authmesh.testing.databases import DbTarget

__all__ = [
    "ADMIN",
    "ALICE",
    "BACKENDS",
    "DEFAULTS",
    "PRIVATE_MEMBERS",
    "Api",
    "basic",
    "claims_of",
    "header_of",
    "launch",
]

BACKENDS = ["sqlite", "postgres"]
ALICE = ("alice", "alice-password-1")
ADMIN = ("admin", "admin-password-1")
#: Members of a private or symmetric JWK (RFC 7518 §6.2.2, §6.3.2, §6.4, RFC 8037 §2).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: No login or rate limits: these tests fail logins and hammer endpoints on purpose; the
#: limiter has its own tests (test_login_limits.py).
DEFAULTS: dict[str, Any] = {
    "login_max_failures": 1000,
    "login_lock_after": 10_000,
    "rate_limit_per_minute": 0,
}


def basic(client_id: str, secret: str) -> str:
    """An ``Authorization: Basic`` value (RFC 6749 §2.3.1, without the form-encoding)."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (for assertions on what the server issued)."""
    return _segment(token, 1)


def header_of(token: str) -> dict[str, Any]:
    """The protected header of a JWT, unverified."""
    return _segment(token, 0)


@dataclass
class Api:
    """A running, seeded auth server and an HTTP client for it."""

    server: AuthServerThread
    service_secret: str
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.server.url, timeout=15)

    @property
    def url(self) -> str:
        """The server's base URL (also its issuer)."""
        return self.server.url

    @property
    def core(self) -> ServerContext:
        """The server's core, for set-up and for reading the database."""
        return self.server.core

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    def new_user(self, *roles: str) -> tuple[str, str]:
        """A fresh user of its own (role ``user`` unless told); returns name and password.

        Tests sharing a server act on their own user, so blocking or logging out
        one test's user leaves the others alone.
        """
        name = f"u-{uuid.uuid4().hex[:12]}"
        password = f"pw-{uuid.uuid4().hex}"
        wanted = list(roles) or ["user"]
        self.server.call(
            accounts.create_user(self.core, username=name, password=password, roles=wanted)
        )
        return name, password

    def user_id(self, username: str) -> str:
        """A user's id (the ``sub`` of their tokens)."""
        response = self.admin("GET", f"/admin/users/{username}")
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    # --- the token endpoint -------------------------------------------------
    def token(
        self,
        data: Mapping[str, str] | Sequence[tuple[str, str]],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST a form to ``/oauth/token`` (a list of pairs may repeat a name)."""
        pairs = list(data.items()) if isinstance(data, Mapping) else list(data)
        return self.http.post(
            "/oauth/token",
            content=urlencode(pairs),
            headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
        )

    def password_grant(
        self,
        username: str = ALICE[0],
        password: str = ALICE[1],
        *,
        client_id: str = "web",
        **extra: str,
    ) -> httpx.Response:
        """A password-grant request of the public ``web`` client."""
        form = {"grant_type": "password", "username": username, "password": password}
        return self.token({**form, "client_id": client_id, **extra})

    def login(
        self, username: str = ALICE[0], password: str = ALICE[1], **extra: str
    ) -> dict[str, Any]:
        """A successful login's token response."""
        response = self.password_grant(username, password, **extra)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def refresh(
        self, refresh_token: str, *, client_id: str = "web", **extra: str
    ) -> httpx.Response:
        """A refresh-grant request."""
        return self.token(
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": client_id,
                **extra,
            }
        )

    def service_token(self, **extra: str) -> dict[str, Any]:
        """A client_credentials token of ``orders-svc``."""
        response = self.token(
            {"grant_type": "client_credentials", **extra},
            headers={"Authorization": self.service_basic},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    # --- client credentials, bearer calls -----------------------------------
    @property
    def service_basic(self) -> str:
        """HTTP Basic credentials of the confidential ``orders-svc`` client."""
        return basic("orders-svc", self.service_secret)

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        """An ``Authorization: Bearer`` header."""
        return {"Authorization": f"Bearer {token}"}

    def admin_token(self) -> str:
        """A fresh access token of the seeded admin."""
        return str(self.login(*ADMIN)["access_token"])

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the admin API as the seeded admin."""
        return self.http.request(method, path, headers=self.bearer(self.admin_token()), **kwargs)

    def userinfo(self, token: str) -> httpx.Response:
        """``GET /userinfo`` with a bearer token."""
        return self.http.get("/userinfo", headers=self.bearer(token))

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 introspection as ``orders-svc``; asserts 200."""
        response = self.http.post(
            "/oauth/introspect",
            data={"token": token},
            headers={"Authorization": self.service_basic},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def revoke(self, token: str, *, client_id: str = "web", **extra: str) -> httpx.Response:
        """RFC 7009 revocation by a public client."""
        return self.http.post(
            "/oauth/revoke", data={"token": token, "client_id": client_id, **extra}
        )

    def revocations(self, after: int = 0, limit: int | None = None) -> dict[str, Any]:
        """One page of the revocation feed; asserts 200."""
        params: dict[str, int] = {"after": after}
        if limit is not None:
            params["limit"] = limit
        response = self.http.get(
            "/revocations", params=params, headers={"Authorization": self.service_basic}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def events(self, after: int = 0) -> list[tuple[str, str]]:
        """``(kind, value)`` of every live revocation event after ``after``."""
        return [(e["kind"], e["value"]) for e in self.revocations(after, 1000)["events"]]

    def latest_cursor(self) -> int:
        """The feed's newest cursor."""
        return int(self.revocations()["latest_cursor"])

    # --- verification like a service would do it ----------------------------
    def jwks(self) -> dict[str, Any]:
        """The published JWKS."""
        response = self.http.get("/.well-known/jwks.json")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def verify(self, token: str, audience: str) -> dict[str, Any]:
        """Verify an access token against the fetched JWKS (raises TokenRejected)."""
        policy = VerifyPolicy.for_access_tokens(issuer=self.url, audience=audience)
        return verify_jwt(token, KeySet.from_jwks(self.jwks()), policy).claims


def launch(
    target: DbTarget,
    *,
    seed: bool = True,
    clock: Any = None,
    prepare: Callable[[AuthServerThread], None] | None = None,
    **overrides: Any,
) -> Api:
    """Start a server on ``target`` (migrating it) and seed the demo accounts.

    ``prepare`` sees the server before it starts (to add middleware to its app).
    """
    settings = settings_for(target, **{**DEFAULTS, **overrides})
    server = AuthServerThread(settings, clock=clock)
    if prepare is not None:
        prepare(server)
    server.start()
    try:
        secret = seed_demo(server)["service_secret"] if seed else ""
    except BaseException:
        server.stop()
        raise
    return Api(server, secret)
