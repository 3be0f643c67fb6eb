"""Who may read the revocation feed: a registered confidential client, by HTTP Basic."""

from __future__ import annotations

from authmesh.server.client_auth import authenticate_client, parse_client_credentials
from authmesh.server.context import ServerContext
from authmesh.server.errors import InvalidClient, OAuthError
from authmesh.store.models import ClientRow

__all__ = ["authenticate_reader", "claimed_reader"]


def claimed_reader(authorization: str | None) -> str | None:
    """The client id a request's HTTP Basic credentials name, unverified (``None`` if none).

    Only for refusing cheaply what would be refused anyway once verified: the
    answer to a client over its stream limit must not cost a database read.
    """
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        return parse_client_credentials(authorization, {}).client_id
    except OAuthError:
        return None


async def authenticate_reader(ctx: ServerContext, authorization: str | None) -> ClientRow:
    """The service client reading the feed, from its ``Authorization`` header.

    Raises:
        InvalidClient: no HTTP Basic credentials, wrong ones, or a public client.
    """
    if not authorization or not authorization.lower().startswith("basic "):
        raise InvalidClient("the revocation feed needs HTTP Basic client credentials")
    client = await authenticate_client(ctx, parse_client_credentials(authorization, {}))
    if client.secret_hash is None:
        raise InvalidClient("the revocation feed is for confidential service clients")
    return client
