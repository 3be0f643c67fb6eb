"""Registering, listing, changing and removing clients (the admin API's and the CLI's)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from authmesh.server import audit
from authmesh.server.client_auth import GRANT_TYPES, TOKEN_EXCHANGE
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.errors import (
    InvalidRequest,
    NotFound,
)
from authmesh.server.feed import publish
from authmesh.server.oidc.redirect_uris import check_redirect_uri
from authmesh.server.secrets import hash_secret, new_secret
from authmesh.store import clients as client_store
from authmesh.store.models import ClientRow

__all__ = [
    "ClientView",
    "NewClient",
    "get_client",
    "list_clients",
    "register_client",
    "remove_client",
    "rotate_secret",
    "update_client",
]

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_NAME_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]{1,100}$")  # RFC 6749 scope-token chars


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientView:
    """A client as the admin API and CLI show it (never its secret or its hash)."""

    client_id: str
    name: str
    public: bool
    grant_types: list[str]
    scopes: list[str]
    audiences: list[str]
    roles: list[str]
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    first_party: bool
    serves: list[str]
    dpop_bound_access_tokens: bool
    created_at: float

    @classmethod
    def from_row(cls, row: ClientRow) -> ClientView:
        """The view of a stored client."""
        return cls(
            client_id=row.client_id,
            name=row.name,
            public=row.secret_hash is None,
            grant_types=row.grant_types,
            scopes=row.scopes,
            audiences=row.audiences,
            roles=row.roles,
            redirect_uris=row.redirect_uris,
            post_logout_redirect_uris=row.post_logout_redirect_uris,
            first_party=row.first_party,
            serves=row.serves,
            dpop_bound_access_tokens=row.dpop_bound_access_tokens,
            created_at=row.created_at,
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the admin API."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class NewClient:
    """A registered client and its secret, shown this once."""

    client: ClientView
    secret: str | None


def _check_tokens(kind: str, values: Sequence[str]) -> list[str]:
    for value in values:
        if not _NAME_TOKEN.match(value):
            raise InvalidRequest(f"invalid {kind} {value!r}: use printable characters, no spaces")
    return sorted(set(values))


def _check_redirect_uris(uris: Sequence[str]) -> list[str]:
    try:
        return [check_redirect_uri(uri) for uri in dict.fromkeys(uris)]
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


def _checked_settings(
    *,
    public: bool,
    name: str,
    grant_types: Sequence[str],
    scopes: Sequence[str],
    audiences: Sequence[str],
    redirect_uris: Sequence[str],
    post_logout_redirect_uris: Sequence[str],
    first_party: bool,
    serves: Sequence[str],
) -> dict[str, Any]:
    """A client's settings checked and normalized, as the store takes them.

    Raises:
        InvalidRequest: what :func:`register_client` names, but the id.
    """
    unknown = set(grant_types) - GRANT_TYPES
    if unknown or not grant_types:
        raise InvalidRequest(f"grant_types must be among {sorted(GRANT_TYPES)}")
    if public and "client_credentials" in grant_types:
        raise InvalidRequest("a public client cannot use client_credentials")
    if public and TOKEN_EXCHANGE in grant_types:
        raise InvalidRequest("a public client cannot use token exchange")
    if TOKEN_EXCHANGE in grant_types and not serves:
        raise InvalidRequest(
            "a client using token exchange needs the audiences its own API serves (serves)"
        )
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise InvalidRequest("name must not contain control characters")
    redirects = _check_redirect_uris(redirect_uris)
    post_logout = _check_redirect_uris(post_logout_redirect_uris)
    if "authorization_code" in grant_types and not redirects:
        raise InvalidRequest("a client using authorization_code needs at least one redirect URI")
    return {
        "name": name[:200],
        "grant_types": list(grant_types),
        "scopes": _check_tokens("scope", scopes),
        "audiences": _check_tokens("audience", audiences),
        "redirect_uris": redirects,
        "post_logout_redirect_uris": post_logout,
        "first_party": first_party,
        "serves": _check_tokens("audience", serves),
    }


async def register_client(
    ctx: ServerContext,
    *,
    client_id: str,
    name: str = "",
    public: bool = False,
    grant_types: Sequence[str] = ("client_credentials",),
    scopes: Sequence[str] = (),
    audiences: Sequence[str] = (),
    roles: Sequence[str] = (),
    redirect_uris: Sequence[str] = (),
    post_logout_redirect_uris: Sequence[str] = (),
    first_party: bool = True,
    serves: Sequence[str] = (),
    dpop_bound_access_tokens: bool = False,
    info: RequestInfo | None = None,
) -> NewClient:
    """Register a client; a confidential one gets a generated secret, stored hashed.

    Raises:
        InvalidRequest: bad id, unknown grant type, a public client asking for
            client_credentials, a redirect URI that may not be registered, an
            authorization_code client without one, or the id is taken.
    """
    if not _CLIENT_ID.match(client_id):
        raise InvalidRequest("client_id must be 1-100 of A-Z a-z 0-9 . _ : -")
    settings = _checked_settings(
        public=public,
        name=name,
        grant_types=grant_types,
        scopes=scopes,
        audiences=audiences,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=post_logout_redirect_uris,
        first_party=first_party,
        serves=serves,
    )
    secret = None if public else new_secret()
    try:
        async with ctx.db.transaction() as session:
            client = await client_store.create_client(
                session,
                client_id=client_id,
                secret_hash=None if secret is None else hash_secret(secret),
                roles=_check_tokens("role", roles),
                now=ctx.now(),
                **settings,
                dpop_bound_access_tokens=dpop_bound_access_tokens,
            )
            await audit.record(
                ctx, session, "client_create", info=info, subject=client_id, client_id=client_id
            )
    except IntegrityError:
        raise InvalidRequest(f"client {client_id!r} already exists") from None
    return NewClient(client=ClientView.from_row(client), secret=secret)


async def list_clients(ctx: ServerContext) -> list[ClientView]:
    """Every registered client."""
    async with ctx.db.transaction() as session:
        return [ClientView.from_row(row) for row in await client_store.list_clients(session)]


async def remove_client(
    ctx: ServerContext, client_id: str, *, info: RequestInfo | None = None
) -> bool:
    """Delete a client and revoke the tokens issued to it as a subject."""
    async with ctx.db.transaction() as session:
        existed = await client_store.delete_client(session, client_id)
        cursors: list[int] = []
        if existed:
            # The client can get no new token, so cover this whole second too.
            cursors = await publish.revoke(
                ctx, session, "sub", [client_id], through_this_second=True, reason="client_removed"
            )
            await audit.record(
                ctx, session, "client_delete", info=info, subject=client_id, client_id=client_id
            )
    await publish.announce(ctx, cursors)
    return existed


async def get_client(ctx: ServerContext, client_id: str) -> ClientView:
    """One client.

    Raises:
        NotFound: no such client.
    """
    async with ctx.db.transaction() as session:
        row = await client_store.get_client(session, client_id)
    if row is None:
        raise NotFound(f"no client {client_id[:100]!r}")
    return ClientView.from_row(row)


async def update_client(
    ctx: ServerContext,
    client_id: str,
    *,
    name: str,
    grant_types: Sequence[str],
    scopes: Sequence[str],
    audiences: Sequence[str],
    redirect_uris: Sequence[str],
    post_logout_redirect_uris: Sequence[str],
    first_party: bool,
    serves: Sequence[str] | None = None,
    info: RequestInfo | None = None,
) -> ClientView:
    """Replace a client's settings; tokens already issued keep what they carry.

    Raises:
        NotFound: no such client.
        InvalidRequest: the settings :func:`register_client` would refuse.
    """
    async with ctx.db.transaction() as session:
        row = await client_store.get_client(session, client_id)
        if row is None:
            raise NotFound(f"no client {client_id[:100]!r}")
        settings = _checked_settings(
            public=row.secret_hash is None,
            name=name,
            grant_types=grant_types,
            scopes=scopes,
            audiences=audiences,
            redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout_redirect_uris,
            first_party=first_party,
            serves=row.serves if serves is None else serves,
        )
        await client_store.update_client(session, client_id, **settings)
        await audit.record(
            ctx,
            session,
            "client_update",
            info=info,
            subject=client_id,
            client_id=client_id,
            before=_auditable(ClientView.from_row(row)),
            after={k: v for k, v in settings.items() if k != "name"},
        )
        updated = await client_store.get_client(session, client_id)
    assert updated is not None
    return ClientView.from_row(updated)


def _auditable(view: ClientView) -> dict[str, Any]:
    return {
        "grant_types": view.grant_types,
        "scopes": view.scopes,
        "audiences": view.audiences,
        "redirect_uris": view.redirect_uris,
        "post_logout_redirect_uris": view.post_logout_redirect_uris,
        "first_party": view.first_party,
        "serves": view.serves,
    }


async def rotate_secret(
    ctx: ServerContext, client_id: str, *, info: RequestInfo | None = None
) -> str:
    """Give a confidential client a new secret (shown this once); the old one stops at once.

    Tokens the client already holds stay valid until they expire.

    Raises:
        NotFound: no such client.
        InvalidRequest: the client is public (it has no secret).
    """
    secret = new_secret()
    async with ctx.db.transaction() as session:
        row = await client_store.get_client(session, client_id)
        if row is None:
            raise NotFound(f"no client {client_id[:100]!r}")
        if not await client_store.set_secret_hash(session, client_id, hash_secret(secret)):
            raise InvalidRequest("a public client has no secret to rotate")
        await audit.record(
            ctx, session, "client_secret_rotate", info=info, subject=client_id, client_id=client_id
        )
    return secret
