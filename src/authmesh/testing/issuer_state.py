"""What the test issuer knows: keys, clients and revocation events; thread-safe.

The state outlives the server that serves it, so a test can stop the issuer,
write revocations while it is down, and start it again.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from authmesh.jose import Key
from authmesh.revocation import RevocationEvent, RevocationKind
from authmesh.testing.tokens import mint_access_token

__all__ = ["IssuerCounters", "IssuerState", "RegisteredClient"]


@dataclass
class RegisteredClient:
    """A service client: its secret and what it may ask for by client_credentials."""

    secret: str
    scopes: frozenset[str] = frozenset()
    audiences: tuple[str, ...] = ()


@dataclass
class IssuerCounters:
    """Requests served, by kind (to assert on caching and reconnects)."""

    discovery: int = 0
    jwks: int = 0
    tokens: int = 0
    pages: int = 0
    streams: int = 0
    unauthorized: int = 0


@dataclass
class IssuerState:
    """Keys, clients and revocation events of a test issuer.

    Attributes:
        heartbeat: seconds between heartbeats on the feed stream.
        jwks_max_age: the JWKS ``Cache-Control: max-age``.
        token_lifetime: default access-token lifetime in seconds.
        event_ttl: default seconds until a revocation event may be dropped.
        stream_enabled: ``False`` answers 404 on the stream (polling only).
        stream_cursors: the cursor each stream connection resumed after.
    """

    heartbeat: float = 0.2
    jwks_max_age: int = 300
    token_lifetime: int = 300
    event_ttl: float = 600.0
    stream_enabled: bool = True
    issuer: str = ""
    keys: list[Key] = field(default_factory=list)
    signing_kid: str | None = None
    clients: dict[str, RegisteredClient] = field(default_factory=dict)
    events: list[RevocationEvent] = field(default_factory=list)
    counters: IssuerCounters = field(default_factory=IssuerCounters)
    stream_cursors: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- keys and tokens ---------------------------------------------------------------

    def add_key(self, alg: str = "EdDSA", *, sign: bool = True) -> Key:
        """Publish a new key in JWKS; it signs new tokens if ``sign``."""
        key = Key.generate(alg)
        with self._lock:
            self.keys.append(key)
            if sign or self.signing_kid is None:
                self.signing_kid = key.kid
        return key

    def remove_key(self, kid: str) -> None:
        """Withdraw a key from JWKS."""
        with self._lock:
            self.keys = [k for k in self.keys if k.kid != kid]

    def signing_key(self) -> Key:
        """The key new tokens are signed with."""
        return next(k for k in self.keys if k.kid == self.signing_kid)

    def jwks(self) -> dict[str, Any]:
        """The published JWKS (public parts only)."""
        with self._lock:
            return {"keys": [k.to_jwk(private=False) for k in self.keys]}

    def mint(
        self,
        *,
        sub: str = "user-1",
        audience: str | list[str] = "orders",
        roles: Iterable[str] = (),
        scope: str | Iterable[str] = "",
        sid: str | None = "session-1",
        client_id: str = "web",
        lifetime: float | None = None,
        iat: float | None = None,
        key: Key | None = None,
        **extra: Any,
    ) -> str:
        """An RFC 9068 access token as the real server issues it (see :func:`mint_access_token`)."""
        return mint_access_token(
            key or self.signing_key(),
            issuer=self.issuer,
            sub=sub,
            audience=audience,
            roles=roles,
            scope=scope,
            sid=sid,
            client_id=client_id,
            lifetime=self.token_lifetime if lifetime is None else lifetime,
            iat=iat,
            **extra,
        )

    # -- revocation events -------------------------------------------------------------

    def revoke(
        self,
        kind: RevocationKind,
        value: str,
        *,
        not_before: float | None = None,
        ttl: float | None = None,
    ) -> RevocationEvent:
        """Write an event (as block / logout / token revocation do); the next cursor."""
        now = time.time()
        with self._lock:
            cursor = (self.events[-1].cursor if self.events else 0) + 1
            event = RevocationEvent(
                kind=kind,
                value=value,
                not_before=now if not_before is None else not_before,
                expires_at=now + (self.event_ttl if ttl is None else ttl),
                cursor=cursor,
            )
            self.events.append(event)
        return event

    def live_after(self, cursor: int, limit: int = 1000) -> list[RevocationEvent]:
        """Unexpired events after ``cursor``, oldest first."""
        now = time.time()
        with self._lock:
            live = [e for e in self.events if e.cursor > cursor and e.expires_at > now]
        return live[:limit]

    def latest_cursor(self) -> int:
        """The newest cursor written (0 before any event)."""
        with self._lock:
            return self.events[-1].cursor if self.events else 0

    # -- clients -----------------------------------------------------------------------

    def register_client(
        self, client_id: str, *, scopes: Iterable[str] = (), audiences: Iterable[str] = ()
    ) -> str:
        """Register a service client; its new secret."""
        secret = secrets.token_urlsafe(24)
        self.clients[client_id] = RegisteredClient(secret, frozenset(scopes), tuple(audiences))
        return secret

    def authenticate(self, authorization: str | None, form: dict[str, str]) -> str | None:
        """The client id proven by HTTP Basic (RFC 6749 §2.3.1) or the form, else ``None``."""
        client_id = secret = None
        if authorization and authorization.lower().startswith("basic "):
            try:
                raw = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            user, sep, password = raw.partition(":")
            if not sep:
                return None
            client_id, secret = unquote_plus(user), unquote_plus(password)
        elif "client_id" in form:
            client_id, secret = form["client_id"], form.get("client_secret")
        client = self.clients.get(client_id or "")
        if client is None or secret is None or not secrets.compare_digest(client.secret, secret):
            return None
        return client_id
