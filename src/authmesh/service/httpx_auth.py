"""Service-to-service calls: an :class:`httpx.Auth` that sends a client_credentials token.

::

    auth = ClientCredentialsAuth(config, scope="catalog:read", audience="catalog")
    async with httpx.AsyncClient(auth=auth) as client:
        await client.get("https://catalog.internal/items")

The token comes from the issuer's token endpoint (from discovery) with the
``client_credentials`` grant (RFC 6749 §4.4), the client authenticated with
HTTP Basic (§2.3.1). It is cached and renewed once ``renew_at`` (default 80%)
of its lifetime has passed; a 401 from the target renews it and retries once.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncGenerator, Generator, Iterable
from typing import Any

import httpx

from authmesh.dpop import make_proof
from authmesh.errors import ConfigError
from authmesh.jose import Key
from authmesh.jose.policy import Clock
from authmesh.service._discovery import Discovery
from authmesh.service._http import HttpClients, basic_authorization, propagate_trace
from authmesh.service.config import ServiceConfig
from authmesh.service.errors import DiscoveryError, TokenRequestError

__all__ = ["ClientCredentialsAuth"]

#: Lifetime assumed when the token response has no ``expires_in`` (RFC 6749 §5.1: RECOMMENDED).
DEFAULT_EXPIRES_IN = 300.0


def _names(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    return value.split() if isinstance(value, str) else list(value)


def token_endpoint_of(discovery: Discovery) -> str:
    """The issuer's token endpoint, from discovery.

    Raises:
        TokenRequestError: discovery failed or names no token endpoint.
    """
    try:
        endpoint = discovery.get().token_endpoint
    except DiscoveryError as exc:
        raise TokenRequestError(str(exc)) from exc
    if not endpoint:
        raise TokenRequestError("discovery names no token_endpoint")
    return endpoint


async def async_token_endpoint_of(discovery: Discovery) -> str:
    """Async :func:`token_endpoint_of`."""
    try:
        endpoint = (await discovery.aget()).token_endpoint
    except DiscoveryError as exc:
        raise TokenRequestError(str(exc)) from exc
    if not endpoint:
        raise TokenRequestError("discovery names no token_endpoint")
    return endpoint


def parse_token_response(
    response: httpx.Response, *, token_type: str = "bearer"
) -> tuple[str, float]:
    """The access token of a token response (RFC 6749 §5.1) and its lifetime.

    ``token_type`` is the one asked for: ``bearer``, or ``dpop`` with a proof (RFC 9449).

    Raises:
        TokenRequestError: an error response (§5.2), or no access token of that type.
    """
    try:
        doc = json.loads(response.content)
    except ValueError:
        doc = None
    if response.status_code != 200 or not isinstance(doc, dict):
        error = doc.get("error") if isinstance(doc, dict) else None
        desc = doc.get("error_description") if isinstance(doc, dict) else None
        raise TokenRequestError(
            f"token endpoint: HTTP {response.status_code}"
            + (f" {error}" if isinstance(error, str) else "")
            + (f": {desc[:200]}" if isinstance(desc, str) else ""),
            error=error if isinstance(error, str) else None,
            status=response.status_code,
        )
    token = doc.get("access_token")
    kind = doc.get("token_type")
    if not isinstance(token, str) or not token:
        raise TokenRequestError("token endpoint: the response has no access_token")
    if not isinstance(kind, str) or kind.lower() != token_type:
        raise TokenRequestError(f"token endpoint: the token is not a {token_type} token")
    expires_in = doc.get("expires_in", DEFAULT_EXPIRES_IN)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
        expires_in = DEFAULT_EXPIRES_IN
    return token, float(expires_in)


class ClientCredentialsAuth(httpx.Auth):
    """Bearer tokens for outgoing requests, from the client_credentials grant.

    Args:
        config: the calling service's config (issuer, client id and secret, TLS).
        scope: scopes to ask for (default: whatever the client is allowed).
        audience: audiences the token is for (sent as ``audience``).
        renew_at: renew once this fraction of the token's lifetime has passed.
        token_endpoint: skip discovery and use this URL.
        transport / async_transport: transports for the token requests (tests).
        monotonic: the clock of renewals.

    Raises:
        ConfigError: the config has no client credentials, or ``renew_at`` is not in (0, 1].
    """

    requires_request_body = True

    def __init__(
        self,
        config: ServiceConfig,
        *,
        scope: str | Iterable[str] | None = None,
        audience: str | Iterable[str] | None = None,
        renew_at: float = 0.8,
        token_endpoint: str | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        monotonic: Clock = time.monotonic,
        dpop_key: Key | None = None,
    ) -> None:
        if config.client_id is None or config.client_secret is None:
            raise ConfigError("ClientCredentialsAuth needs client_id and client_secret")
        if dpop_key is not None and (not dpop_key.is_private or dpop_key.is_symmetric):
            raise ConfigError("dpop_key must be a private asymmetric key")
        self._dpop_key = dpop_key
        if not 0 < renew_at <= 1:
            raise ConfigError("renew_at must be in (0, 1]")
        if token_endpoint is not None:
            config.check_url(token_endpoint, what="token_endpoint")
        self._config = config
        self._scope = _names(scope)
        self._audience = _names(audience)
        self._renew_at = renew_at
        self._endpoint = token_endpoint
        self._monotonic = monotonic
        self._authorization = basic_authorization(config.client_id, config.client_secret)
        self._http = HttpClients(config, transport=transport, async_transport=async_transport)
        self._discovery = Discovery(config, self._http, monotonic=monotonic)
        self._token: str | None = None
        self._renew_deadline = 0.0
        self._lock = threading.Lock()
        self._alock: asyncio.Lock | None = None
        self._alock_loop: asyncio.AbstractEventLoop | None = None
        self.token_requests = 0
        """How many tokens were requested so far."""

    # -- httpx.Auth --------------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Send with a token; on 401 renew it and retry once."""
        token = self._sync_token(None)
        self._present(request, token)
        propagate_trace(self._config, request)
        response = yield request
        if response.status_code == 401:
            self._present(request, self._sync_token(token))
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Async :meth:`sync_auth_flow`."""
        token = await self._async_token(None)
        self._present(request, token)
        propagate_trace(self._config, request)
        response = yield request
        if response.status_code == 401:
            self._present(request, await self._async_token(token))
            yield request

    def _present(self, request: httpx.Request, token: str) -> None:
        """``Bearer <token>``, or ``DPoP <token>`` with a fresh proof (RFC 9449 §7)."""
        if self._dpop_key is None:
            request.headers["Authorization"] = f"Bearer {token}"
            return
        request.headers["Authorization"] = f"DPoP {token}"
        request.headers["DPoP"] = make_proof(
            self._dpop_key, method=request.method, url=str(request.url), access_token=token
        )

    # -- tokens ------------------------------------------------------------------------

    def _cached(self, rejected: str | None) -> str | None:
        token = self._token
        if token is None or token == rejected or self._monotonic() >= self._renew_deadline:
            return None
        return token

    def _sync_token(self, rejected: str | None) -> str:
        """The cached token unless due for renewal or ``rejected`` by the target."""
        token = self._cached(rejected)
        if token is not None:
            return token
        with self._lock:
            token = self._cached(rejected)
            if token is not None:
                return token
            endpoint = self._endpoint or self._sync_endpoint()
            started = self._monotonic()
            try:
                response = self._http.sync_client().post(endpoint, **self._request(endpoint))
            except httpx.HTTPError as exc:
                raise TokenRequestError(f"token endpoint: {type(exc).__name__}: {exc}") from exc
            return self._store(response, started)

    async def _async_token(self, rejected: str | None) -> str:
        token = self._cached(rejected)
        if token is not None:
            return token
        loop = asyncio.get_running_loop()
        if self._alock is None or self._alock_loop is not loop:
            self._alock, self._alock_loop = asyncio.Lock(), loop
        async with self._alock:
            token = self._cached(rejected)
            if token is not None:
                return token
            endpoint = self._endpoint or await self._async_endpoint()
            started = self._monotonic()
            try:
                response = await self._http.async_client().post(endpoint, **self._request(endpoint))
            except httpx.HTTPError as exc:
                raise TokenRequestError(f"token endpoint: {type(exc).__name__}: {exc}") from exc
            return self._store(response, started)

    def _sync_endpoint(self) -> str:
        return token_endpoint_of(self._discovery)

    async def _async_endpoint(self) -> str:
        return await async_token_endpoint_of(self._discovery)

    def _request(self, endpoint: str) -> dict[str, Any]:
        form: dict[str, Any] = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = " ".join(self._scope)
        if self._audience:
            form["audience"] = self._audience
        headers = {"Authorization": self._authorization, "Accept": "application/json"}
        if self._dpop_key is not None:
            headers["DPoP"] = make_proof(self._dpop_key, method="POST", url=endpoint)
        return {"data": form, "headers": headers}

    def _store(self, response: httpx.Response, started: float) -> str:
        """Parse a token response (RFC 6749 §5.1/§5.2) and cache the token."""
        self.token_requests += 1
        token, expires_in = parse_token_response(
            response, token_type="bearer" if self._dpop_key is None else "dpop"
        )
        self._token = token
        # Counted from when the request was sent: the token's clock started no earlier.
        self._renew_deadline = started + self._renew_at * expires_in
        return token

    # -- life cycle ------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP client used for token requests."""
        self._http.close()

    async def aclose(self) -> None:
        """Close both HTTP clients used for token requests."""
        await self._http.aclose()
