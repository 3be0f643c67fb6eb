"""An in-process auth server for tests: :class:`FakeIssuer`.

It serves the real server's wire contract on a free loopback port (uvicorn in
a thread), so an SDK-protected service follows it exactly as in production:
discovery, JWKS, client_credentials tokens and the revocation feed. A test
mints tokens with any claims and publishes any revocation event::

    with FakeIssuer() as issuer:
        config = issuer.service_config(audience="orders")
        token = issuer.mint(sub="alice", roles=["clerk"], scope="orders:read")
        issuer.revoke_subject("alice")     # services refuse the token within a feed round trip
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from authmesh.revocation import RevocationEvent
from authmesh.service.config import ServiceConfig
from authmesh.testing.issuer_app import build_app
from authmesh.testing.issuer_state import IssuerState
from authmesh.testing.servers import UvicornThread

__all__ = ["FakeIssuer", "bearer"]


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization: Bearer`` header of ``token``, for a test client."""
    return {"Authorization": f"Bearer {token}"}


class FakeIssuer:
    """The test issuer on a loopback port; ``stop()``/``start()`` keep its port and state.

    Args:
        state: keys, clients and events to serve (a fresh :class:`IssuerState`
            with one EdDSA key if not given).
    """

    def __init__(self, state: IssuerState | None = None) -> None:
        self.state = state or IssuerState()
        self._server: UvicornThread | None = None
        self._closing = threading.Event()
        self.port = 0

    @property
    def url(self) -> str:
        """The issuer URL (``iss`` of its tokens; discovery lives below it)."""
        return self.state.issuer

    @property
    def running(self) -> bool:
        """Whether it serves now."""
        return self._server is not None

    def start(self) -> FakeIssuer:
        """Serve on a free port (or the port it had before a :meth:`stop`)."""
        self._closing = threading.Event()
        server = UvicornThread(build_app(self.state, self._closing), port=self.port, lifespan="off")
        server.start()
        self.port = server.port
        self.state.issuer = server.url
        if not self.state.keys:
            self.state.add_key()
        self._server = server
        return self

    def stop(self) -> None:
        """Stop serving, ending open feed streams (the issuer 'goes down')."""
        self._closing.set()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FakeIssuer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- tokens ------------------------------------------------------------------------

    def mint(self, **claims: Any) -> str:
        """An access token: ``sub``, ``roles``, ``scope``, ``audience``, ``lifetime``, ``sid``
        and any other claim (see :meth:`IssuerState.mint`)."""
        return self.state.mint(**claims)

    # -- services ----------------------------------------------------------------------

    def register_client(
        self, client_id: str, *, scopes: Iterable[str] = (), audiences: Iterable[str] = ()
    ) -> str:
        """Register a service client (it may follow the feed); its secret."""
        return self.state.register_client(client_id, scopes=scopes, audiences=audiences)

    def service_config(
        self, audience: str = "orders", *, client_id: str | None = None, **overrides: Any
    ) -> ServiceConfig:
        """A :class:`ServiceConfig` for a service ``audience`` trusting this issuer.

        Registers the service's client (``client_id``, by default the audience)
        so it can follow the revocation feed; reconnects are quick, as tests
        stop and start issuers.
        """
        client = client_id or audience
        secret = self.register_client(client, audiences=[audience])
        values: dict[str, Any] = {
            "issuer": self.url,
            "audience": audience,
            "client_id": client,
            "client_secret": secret,
            "feed_backoff_initial": 0.05,
            "feed_backoff_max": 0.3,
            **overrides,
        }
        return ServiceConfig(**values)

    # -- revocation --------------------------------------------------------------------

    def revoke_subject(self, sub: str, **options: Any) -> RevocationEvent:
        """Revoke every token of ``sub`` issued before now (block, password change)."""
        return self.state.revoke("sub", sub, **options)

    def revoke_session(self, sid: str, **options: Any) -> RevocationEvent:
        """Revoke every token of the session ``sid`` (logout)."""
        return self.state.revoke("sid", sid, **options)

    def revoke_token(self, jti: str, **options: Any) -> RevocationEvent:
        """Revoke the one token whose ``jti`` this is (RFC 7009 revocation)."""
        return self.state.revoke("jti", jti, **options)
