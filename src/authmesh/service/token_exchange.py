"""Calls on a user's behalf: the user's token exchanged for one to another service (RFC 8693).

::

    pricing = TokenExchanger(config, audience="catalog", scope="catalog:read")

    @app.post("/orders")
    async def create(user: Principal = Depends(require(scopes="orders:write"))):
        async with httpx.AsyncClient(auth=pricing.for_user(user)) as client:
            await client.post("https://catalog.internal/graphql", json=...)

The target sees the user as ``sub`` and this service in ``act``; the auth server
allows only the audiences and scopes this client's registration and the user's
token both allow. Use :class:`~authmesh.service.ClientCredentialsAuth` when the
service calls as itself, and this when the call is for the user (the target's
answer depends on who the user is, or it must check the user's rights).

Exchanged tokens are cached per user token (by its hash), renewed at ``renew_at``
of their lifetime, and dropped when the target answers 401.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Generator, Iterable
from typing import Any

import httpx

from authmesh.errors import ConfigError
from authmesh.jose.policy import Clock
from authmesh.service._discovery import Discovery
from authmesh.service._http import HttpClients, basic_authorization, propagate_trace
from authmesh.service.config import ServiceConfig
from authmesh.service.errors import TokenRequestError
from authmesh.service.httpx_auth import (
    async_token_endpoint_of,
    parse_token_response,
    token_endpoint_of,
)
from authmesh.service.principal import Principal

__all__ = ["ACCESS_TOKEN_TYPE", "TOKEN_EXCHANGE", "TokenExchanger"]

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


def _names(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    return value.split() if isinstance(value, str) else list(value)


class TokenExchanger:
    """Exchanges users' access tokens for tokens to one audience, and caches them.

    Args:
        config: the calling service's config (issuer, client id and secret, TLS).
        audience: the service the exchanged tokens are for.
        scope: scopes to ask for (default: all the user's token and this client allow).
        renew_at: exchange again once this fraction of a token's lifetime has passed.
        max_cached: how many users' exchanged tokens to keep (least recently used go).
        token_endpoint: skip discovery and use this URL.
        transport / async_transport: transports for the token requests (tests).
        monotonic: the clock of renewals.

    Raises:
        ConfigError: no client credentials, no audience, or bad ``renew_at``/``max_cached``.
    """

    def __init__(
        self,
        config: ServiceConfig,
        *,
        audience: str,
        scope: str | Iterable[str] | None = None,
        renew_at: float = 0.8,
        max_cached: int = 10_000,
        token_endpoint: str | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        monotonic: Clock = time.monotonic,
    ) -> None:
        if config.client_id is None or config.client_secret is None:
            raise ConfigError("TokenExchanger needs client_id and client_secret")
        if not audience:
            raise ConfigError("TokenExchanger needs the audience of the target service")
        if not 0 < renew_at <= 1:
            raise ConfigError("renew_at must be in (0, 1]")
        if max_cached < 1:
            raise ConfigError("max_cached must be at least 1")
        if token_endpoint is not None:
            config.check_url(token_endpoint, what="token_endpoint")
        self.config = config
        self.audience = audience
        self._scope = _names(scope)
        self._renew_at = renew_at
        self._max_cached = max_cached
        self._endpoint = token_endpoint
        self._monotonic = monotonic
        self._authorization = basic_authorization(config.client_id, config.client_secret)
        self._http = HttpClients(config, transport=transport, async_transport=async_transport)
        self._discovery = Discovery(config, self._http, monotonic=monotonic)
        # sha256(user token) -> (exchanged token, renew deadline)
        self._cache: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.exchanges = 0
        """How many exchanges were requested so far."""

    def for_user(self, user: Principal | str) -> httpx.Auth:
        """An ``httpx.Auth`` sending ``user``'s exchanged token (a principal or a raw token)."""
        return _OnBehalfOf(self, user.token if isinstance(user, Principal) else user)

    # -- exchanges ---------------------------------------------------------------------

    def exchange(self, subject_token: str, *, rejected: str | None = None) -> str:
        """The exchanged token for ``subject_token`` (cached unless due or ``rejected``).

        Raises:
            TokenRequestError: the auth server refused the exchange or could not be reached.
        """
        key = _key(subject_token)
        cached = self._cached(key, rejected)
        if cached is not None:
            return cached
        endpoint = self._endpoint or token_endpoint_of(self._discovery)
        started = self._monotonic()
        try:
            response = self._http.sync_client().post(endpoint, **self._request(subject_token))
        except httpx.HTTPError as exc:
            raise TokenRequestError(f"token endpoint: {type(exc).__name__}: {exc}") from exc
        return self._store(key, response, started)

    async def aexchange(self, subject_token: str, *, rejected: str | None = None) -> str:
        """Async :meth:`exchange`."""
        key = _key(subject_token)
        cached = self._cached(key, rejected)
        if cached is not None:
            return cached
        endpoint = self._endpoint or await async_token_endpoint_of(self._discovery)
        started = self._monotonic()
        try:
            response = await self._http.async_client().post(
                endpoint, **self._request(subject_token)
            )
        except httpx.HTTPError as exc:
            raise TokenRequestError(f"token endpoint: {type(exc).__name__}: {exc}") from exc
        return self._store(key, response, started)

    def _cached(self, key: str, rejected: str | None) -> str | None:
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return None
            token, deadline = entry
            if token == rejected or self._monotonic() >= deadline:
                del self._cache[key]
                return None
            self._cache.move_to_end(key)
            return token

    def _request(self, subject_token: str) -> dict[str, Any]:
        form: dict[str, Any] = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": subject_token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "requested_token_type": ACCESS_TOKEN_TYPE,
            "audience": self.audience,
        }
        if self._scope:
            form["scope"] = " ".join(self._scope)
        return {
            "data": form,
            "headers": {"Authorization": self._authorization, "Accept": "application/json"},
        }

    def _store(self, key: str, response: httpx.Response, started: float) -> str:
        token, expires_in = parse_token_response(response)
        with self._lock:
            self.exchanges += 1
            self._cache[key] = (token, started + self._renew_at * expires_in)
            self._cache.move_to_end(key)
            while len(self._cache) > self._max_cached:
                self._cache.popitem(last=False)
        return token

    # -- life cycle ------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP client used for token requests."""
        self._http.close()

    async def aclose(self) -> None:
        """Close both HTTP clients used for token requests."""
        await self._http.aclose()


def _key(token: str) -> str:
    # The user's token itself is never kept: only what identifies it.
    return hashlib.sha256(token.encode()).hexdigest()


class _OnBehalfOf(httpx.Auth):
    """One user's exchanged token on each request; on 401, exchanged again and retried once."""

    def __init__(self, exchanger: TokenExchanger, subject_token: str) -> None:
        self._exchanger = exchanger
        self._subject_token = subject_token

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        token = self._exchanger.exchange(self._subject_token)
        request.headers["Authorization"] = f"Bearer {token}"
        propagate_trace(self._exchanger.config, request)
        response = yield request
        if response.status_code == 401:
            renewed = self._exchanger.exchange(self._subject_token, rejected=token)
            request.headers["Authorization"] = f"Bearer {renewed}"
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._exchanger.aexchange(self._subject_token)
        request.headers["Authorization"] = f"Bearer {token}"
        propagate_trace(self._exchanger.config, request)
        response = yield request
        if response.status_code == 401:
            renewed = await self._exchanger.aexchange(self._subject_token, rejected=token)
            request.headers["Authorization"] = f"Bearer {renewed}"
            yield request
