"""Who may read the revocation feed: a registered confidential client, by HTTP Basic."""

from __future__ import annotations

from authmesh.server.clients import authenticate_client, parse_client_credentials
from authmesh.server.context import ServerContext
from authmesh.server.errors import InvalidClient
from authmesh.store.models import ClientRow

__all__ = ["authenticate_reader"]


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
