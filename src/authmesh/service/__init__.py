"""The service SDK: verify authmesh access tokens locally, authorize by roles and
scopes, and reject revoked tokens within a second.

::

    from authmesh.service import ServiceConfig
    from authmesh.service.fastapi import install, require

    app = FastAPI()
    auth = install(app, ServiceConfig(
        issuer="https://auth.example.com", audience="orders",
        client_id="orders", client_secret="...",
    ))

Framework adapters live in their own modules, imported only when used, and
each is set up with ``install(app, config_or_auth)``:
:mod:`authmesh.service.fastapi`, :mod:`~authmesh.service.starlette`,
:mod:`~authmesh.service.flask`, :mod:`~authmesh.service.wsgi`,
:mod:`~authmesh.service.strawberry`; service-to-service calls use
:class:`ClientCredentialsAuth` (:mod:`authmesh.service.httpx_auth`) when a service
calls as itself, and :class:`TokenExchanger` (:mod:`authmesh.service.token_exchange`)
when it calls on a user's behalf. The
plumbing behind :class:`ServiceAuth` (discovery, the JWKS cache, the revocation
state and the feed subscriber) lives in private modules.

This package never imports :mod:`authmesh.server` or :mod:`authmesh.store`.
"""

from __future__ import annotations

from authmesh.jose.errors import TokenRejected, TokenRevoked, VerifierUnavailable
from authmesh.service.bearer import Challenge, challenge_for, parse_authorization
from authmesh.service.config import ServiceConfig
from authmesh.service.dpop import DPoPAuth
from authmesh.service.errors import (
    BearerError,
    DiscoveryError,
    FeedError,
    FeedUnauthorized,
    InsufficientScope,
    InvalidRequest,
    IssuerError,
    MissingToken,
    TokenRequestError,
)
from authmesh.service.httpx_auth import ClientCredentialsAuth
from authmesh.service.metrics import register_metrics
from authmesh.service.principal import Principal, check_access
from authmesh.service.service_auth import ServiceAuth
from authmesh.service.stats import ServiceStats
from authmesh.service.token_exchange import TokenExchanger
from authmesh.service.verifier import Verifier

__all__ = [
    "BearerError",
    "Challenge",
    "ClientCredentialsAuth",
    "DPoPAuth",
    "DiscoveryError",
    "FeedError",
    "FeedUnauthorized",
    "InsufficientScope",
    "InvalidRequest",
    "IssuerError",
    "MissingToken",
    "Principal",
    "ServiceAuth",
    "ServiceConfig",
    "ServiceStats",
    "TokenExchanger",
    "TokenRejected",
    "TokenRequestError",
    "TokenRevoked",
    "Verifier",
    "VerifierUnavailable",
    "challenge_for",
    "check_access",
    "parse_authorization",
    "register_metrics",
]
