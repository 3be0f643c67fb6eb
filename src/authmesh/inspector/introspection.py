"""Asking the issuer whether a token is still active (RFC 7662), so that a revoked one shows.

A signature and the claims say nothing about revocation: a blocked user's token
verifies until it expires. Only the issuer knows, and its introspection
endpoint answers authenticated clients (RFC 7662 §2.1), so this needs a
confidential client's credentials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote_plus, urlsplit

import httpx

from authmesh.errors import ConfigError
from authmesh.inspector.issuer_http import get_json, post_form

__all__ = ["IntrospectionClient"]


@dataclass(frozen=True, slots=True, kw_only=True)
class IntrospectionClient:
    """A confidential client of one RFC 7662 introspection endpoint.

    Attributes:
        endpoint: the introspection endpoint's URL.
        client_id: the client that asks.
        client_secret: its secret; never shown by ``repr``.
        timeout: seconds to wait for an answer.
    """

    endpoint: str
    client_id: str
    client_secret: str = field(repr=False)
    timeout: float

    @classmethod
    def at(
        cls, url: str, *, client_id: str, client_secret: str, timeout: float
    ) -> IntrospectionClient:
        """A client of ``url``: the endpoint itself, or a discovery document naming it.

        Raises:
            ConfigError: the discovery document cannot be fetched or names no endpoint.
        """
        if "/.well-known/" in urlsplit(url).path:
            doc = get_json(url, timeout=timeout)
            endpoint = doc.get("introspection_endpoint")
            if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
                raise ConfigError(f"{url} names no introspection_endpoint")
            url = endpoint
        return cls(endpoint=url, client_id=client_id, client_secret=client_secret, timeout=timeout)

    def is_active(self, token: str) -> bool:
        """Whether the issuer says ``token`` is active (RFC 7662 §2.2).

        Raises:
            ConfigError: the endpoint is unreachable, refuses the client, or
                answers without a boolean ``active``.
        """
        # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
        auth = httpx.BasicAuth(quote_plus(self.client_id), quote_plus(self.client_secret))
        form = {"token": token, "token_type_hint": "access_token"}
        answer = post_form(self.endpoint, form, auth=auth, timeout=self.timeout)
        active = answer.get("active")
        if not isinstance(active, bool):
            raise ConfigError(f"{self.endpoint} answered without a boolean 'active' (RFC 7662)")
        return active
