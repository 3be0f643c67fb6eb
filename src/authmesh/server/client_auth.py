"""Client authentication at the token endpoint (RFC 6749 §2.3), and what a client may ask for."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.server.context import ServerContext
from authmesh.server.errors import (
    InvalidClient,
    InvalidDpopProofError,
    InvalidRequest,
    UnauthorizedClient,
)
from authmesh.server.secrets import hash_secret, new_secret, secret_matches
from authmesh.store import clients as client_store
from authmesh.store.models import ClientRow

__all__ = [
    "GRANT_TYPES",
    "TOKEN_EXCHANGE",
    "ClientCredentials",
    "authenticate_client",
    "check_client_credentials",
    "check_dpop_requirement",
    "check_grant_type",
    "parse_client_credentials",
]

#: The grant type of token exchange (RFC 8693 §2.1).
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
GRANT_TYPES = frozenset(
    {"authorization_code", "password", "refresh_token", "client_credentials", TOKEN_EXCHANGE}
)
# Checked against when the client is unknown, so both paths do the same work.
_DUMMY_HASH = hash_secret(new_secret())


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """What the request presented: an id, maybe a secret, and how."""

    client_id: str
    secret: str | None
    method: str  # client_secret_basic | client_secret_post | none


def parse_client_credentials(
    authorization: str | None, form: Mapping[str, str]
) -> ClientCredentials:
    """Read client credentials from HTTP Basic or the form, not both (RFC 6749 §2.3.1).

    Raises:
        InvalidClient: malformed Basic credentials or no client id at all.
        InvalidRequest: more than one authentication method.
    """
    basic = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise InvalidClient("malformed HTTP Basic client credentials") from None
            user, sep, password = decoded.partition(":")
            if not sep:
                raise InvalidClient("malformed HTTP Basic client credentials")
            # §2.3.1: both parts are form-urlencoded before Basic encoding.
            basic = ClientCredentials(
                unquote_plus(user), unquote_plus(password), "client_secret_basic"
            )
            # PostgreSQL text cannot hold NUL: a query with one would fail with a 500.
            if "\x00" in basic.client_id or "\x00" in (basic.secret or ""):
                raise InvalidClient("malformed HTTP Basic client credentials")
    if basic is not None:
        if "client_secret" in form:
            raise InvalidRequest("use one client authentication method, not several")
        if form.get("client_id") not in (None, basic.client_id):
            raise InvalidRequest("client_id in the body differs from the authenticated client")
        return basic
    client_id = form.get("client_id")
    if not client_id:
        raise InvalidClient("client authentication is required")
    secret = form.get("client_secret")
    return ClientCredentials(
        client_id, secret, "client_secret_post" if secret is not None else "none"
    )


async def authenticate_client(
    ctx: ServerContext, creds: ClientCredentials, *, session: AsyncSession | None = None
) -> ClientRow:
    """The registered client these credentials prove.

    Confidential clients must present their secret; a public first-party client
    presents its id alone. Every failure is the same ``invalid_client``. Given a
    ``session``, the client is read in that transaction (a grant's own), which
    saves a transaction of its own.

    Raises:
        InvalidClient: unknown client, wrong or missing secret, or a secret sent
            for a public client.
    """
    if session is None:
        async with ctx.db.autocommit() as own:  # one read: no transaction around it
            client = await client_store.get_client(own, creds.client_id)
    else:
        client = await client_store.get_client(session, creds.client_id)
    return check_client_credentials(client, creds)


def check_client_credentials(client: ClientRow | None, creds: ClientCredentials) -> ClientRow:
    """The client read for ``creds.client_id``, if the credentials prove it (see
    :func:`authenticate_client`, for a caller that read the client with something else).

    Raises:
        InvalidClient: as :func:`authenticate_client`.
    """
    if client is None:
        secret_matches(creds.secret or "", _DUMMY_HASH)
        raise InvalidClient("client authentication failed")
    if client.secret_hash is None:
        if creds.secret:
            raise InvalidClient("client authentication failed")
        return client
    if creds.secret is None or not secret_matches(creds.secret, client.secret_hash):
        raise InvalidClient("client authentication failed")
    return client


def check_grant_type(client: ClientRow, grant_type: str) -> None:
    """Refuse a grant the client is not registered for.

    Raises:
        UnauthorizedClient: ``grant_type`` is not among the client's grant types.
    """
    if grant_type not in client.grant_types:
        raise UnauthorizedClient(f"this client may not use the {grant_type} grant")


def check_dpop_requirement(client: ClientRow, dpop_jkt: str | None) -> None:
    """A client registered with ``dpop_bound_access_tokens`` gets no token without a proof.

    Raises:
        InvalidDpopProofError: no DPoP proof came with the request.
    """
    if client.dpop_bound_access_tokens and dpop_jkt is None:
        raise InvalidDpopProofError("this client must send a DPoP proof (RFC 9449)")
