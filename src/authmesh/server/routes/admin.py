"""The admin API (bearer with role ``admin``): users, clients, audit trail."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from authmesh.server import accounts, clients
from authmesh.server import audit as audit_trail
from authmesh.server.bearer import BearerPrincipal
from authmesh.server.context import RequestInfo
from authmesh.server.errors import NotFound
from authmesh.server.routes.common import admin_principal, get_context, no_store_json, request_info

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["admin"])
Admin = Annotated[BearerPrincipal, Depends(admin_principal)]
GrantTypeName = Literal[
    "authorization_code",
    "password",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:token-exchange",
]


def _client_credentials_only() -> list[GrantTypeName]:
    """The grant types of a new client that names none: a machine client."""
    return ["client_credentials"]


class NewUser(BaseModel):
    """Body of ``POST /admin/users``."""

    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1024)
    roles: list[str] = Field(default_factory=list, max_length=100)
    email: str | None = Field(default=None, max_length=254)


class Roles(BaseModel):
    """Body of ``PUT /admin/users/{username}/roles``."""

    roles: list[str] = Field(max_length=100)


class NewPassword(BaseModel):
    """Body of ``POST /admin/users/{username}/password``."""

    password: str = Field(min_length=1, max_length=1024)
    must_change: bool = Field(
        default=False, description="The user must choose a new one at the next browser sign-in"
    )


class NewClient(BaseModel):
    """Body of ``POST /admin/clients``."""

    client_id: str = Field(min_length=1, max_length=100)
    name: str = Field(default="", max_length=200)
    public: bool = False
    grant_types: list[GrantTypeName] = Field(default_factory=_client_credentials_only, min_length=1)
    scopes: list[str] = Field(default_factory=list, max_length=100)
    audiences: list[str] = Field(default_factory=list, max_length=100)
    roles: list[str] = Field(default_factory=list, max_length=100)
    redirect_uris: list[str] = Field(default_factory=list, max_length=50)
    post_logout_redirect_uris: list[str] = Field(default_factory=list, max_length=50)
    first_party: bool = True
    serves: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Audiences of the client's own API (the tokens it may exchange)",
    )
    dpop_bound_access_tokens: bool = Field(
        default=False, description="Every token must be bound to a DPoP key (RFC 9449)"
    )


class ClientSettings(BaseModel):
    """Body of ``PUT /admin/clients/{client_id}``: every setting but the id, type and roles."""

    name: str = Field(default="", max_length=200)
    grant_types: list[GrantTypeName] = Field(min_length=1)
    scopes: list[str] = Field(default_factory=list, max_length=100)
    audiences: list[str] = Field(default_factory=list, max_length=100)
    redirect_uris: list[str] = Field(default_factory=list, max_length=50)
    post_logout_redirect_uris: list[str] = Field(default_factory=list, max_length=50)
    first_party: bool = True
    serves: list[str] | None = Field(default=None, max_length=100)


def _info(request: Request, admin: BearerPrincipal) -> RequestInfo:
    return request_info(request, actor=admin.username)


@router.post("/users", status_code=201, summary="Create a user")
async def create_user(request: Request, body: NewUser, admin: Admin) -> JSONResponse:
    """Create a user with a password and roles."""
    view = await accounts.create_user(
        get_context(request),
        username=body.username,
        password=body.password,
        roles=body.roles,
        email=body.email,
        info=_info(request, admin),
    )
    return no_store_json(view.to_json(), status_code=201)


@router.get("/users", summary="List users")
async def list_users(
    request: Request,
    admin: Admin,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    q: Annotated[
        str | None, Query(max_length=150, description="Only names or emails containing this")
    ] = None,
) -> JSONResponse:
    """Users ordered by name; with ``q``, those matching it and how many match in all."""
    if q is None:
        views = await accounts.list_users(get_context(request), offset=offset, limit=limit)
        return no_store_json({"users": [v.to_json() for v in views]})
    found, total = await accounts.search_users(get_context(request), q, offset=offset, limit=limit)
    return no_store_json({"users": [v.to_json() for v in found], "total": total})


@router.get("/users/{username}", summary="Get a user")
async def get_user(request: Request, username: str, admin: Admin) -> JSONResponse:
    """One user."""
    return no_store_json((await accounts.get_user(get_context(request), username)).to_json())


@router.put("/users/{username}/roles", summary="Set a user's roles")
async def set_roles(request: Request, username: str, body: Roles, admin: Admin) -> JSONResponse:
    """Replace the roles; removing one revokes the user's current tokens."""
    view = await accounts.set_roles(
        get_context(request), username, body.roles, info=_info(request, admin)
    )
    return no_store_json(view.to_json())


@router.post("/users/{username}/block", summary="Block a user")
async def block(request: Request, username: str, admin: Admin) -> JSONResponse:
    """Block: no more logins or refreshes, every token revoked."""
    view = await accounts.block_user(get_context(request), username, info=_info(request, admin))
    return no_store_json(view.to_json())


@router.post("/users/{username}/unblock", summary="Unblock a user")
async def unblock(request: Request, username: str, admin: Admin) -> JSONResponse:
    """Allow logins again."""
    view = await accounts.unblock_user(get_context(request), username, info=_info(request, admin))
    return no_store_json(view.to_json())


@router.post("/users/{username}/unlock", summary="Lift a brute-force lock")
async def unlock(request: Request, username: str, admin: Admin) -> JSONResponse:
    """Clear the account's failed-login back-off and lock (unblock does this too)."""
    view = await accounts.unlock_user(get_context(request), username, info=_info(request, admin))
    return no_store_json(view.to_json())


@router.post("/users/{username}/logout", summary="Force re-authentication")
async def force_logout(request: Request, username: str, admin: Admin) -> JSONResponse:
    """End every session of the user; they must log in again."""
    ended = await accounts.logout_all(
        get_context(request), username, info=_info(request, admin), forced=True
    )
    return no_store_json({"sessions_ended": ended})


@router.post("/users/{username}/password", status_code=204, summary="Set a user's password")
async def set_password(
    request: Request, username: str, body: NewPassword, admin: Admin
) -> Response:
    """Reset a password; the user's sessions end."""
    await accounts.set_password(
        get_context(request),
        username,
        body.password,
        info=_info(request, admin),
        must_change=body.must_change,
    )
    return Response(status_code=204)


@router.post("/clients", status_code=201, summary="Register a client")
async def create_client(request: Request, body: NewClient, admin: Admin) -> JSONResponse:
    """Register a client; the secret is in this response only, stored hashed."""
    made = await clients.register_client(
        get_context(request),
        client_id=body.client_id,
        name=body.name,
        public=body.public,
        grant_types=body.grant_types,
        scopes=body.scopes,
        audiences=body.audiences,
        roles=body.roles,
        redirect_uris=body.redirect_uris,
        post_logout_redirect_uris=body.post_logout_redirect_uris,
        first_party=body.first_party,
        serves=body.serves,
        dpop_bound_access_tokens=body.dpop_bound_access_tokens,
        info=_info(request, admin),
    )
    result = made.client.to_json()
    if made.secret is not None:
        result["client_secret"] = made.secret
    return no_store_json(result, status_code=201)


@router.get("/clients", summary="List clients")
async def list_clients(request: Request, admin: Admin) -> JSONResponse:
    """Every registered client (never a secret)."""
    views = await clients.list_clients(get_context(request))
    return no_store_json({"clients": [v.to_json() for v in views]})


@router.put("/clients/{client_id}", summary="Change a client's settings")
async def update_client(
    request: Request, client_id: str, body: ClientSettings, admin: Admin
) -> JSONResponse:
    """Replace a client's settings; tokens already issued keep what they carry."""
    view = await clients.update_client(
        get_context(request), client_id, info=_info(request, admin), **body.model_dump()
    )
    return no_store_json(view.to_json())


@router.post("/clients/{client_id}/secret", summary="Rotate a client's secret")
async def rotate_secret(request: Request, client_id: str, admin: Admin) -> JSONResponse:
    """A new secret, in this response only; the old one stops at once."""
    secret = await clients.rotate_secret(
        get_context(request), client_id, info=_info(request, admin)
    )
    return no_store_json({"client_id": client_id, "client_secret": secret})


@router.delete("/clients/{client_id}", status_code=204, summary="Delete a client")
async def delete_client(request: Request, client_id: str, admin: Admin) -> Response:
    """Remove a client and revoke its own tokens."""
    if not await clients.remove_client(get_context(request), client_id, info=_info(request, admin)):
        raise NotFound(f"no client {client_id[:100]!r}")
    return Response(status_code=204)


@router.get("/audit", summary="Query the audit trail")
async def audit(
    request: Request,
    admin: Admin,
    action: Annotated[str | None, Query(max_length=50)] = None,
    subject: Annotated[str | None, Query(max_length=150)] = None,
    actor: Annotated[str | None, Query(max_length=150)] = None,
    outcome: Annotated[str | None, Query(max_length=20)] = None,
    since: Annotated[float | None, Query(ge=0, le=1e11)] = None,
    until: Annotated[float | None, Query(ge=0, le=1e11)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    """Security events, newest first, filtered by every given field."""
    what = audit_trail.AuditQuery(
        action=action,
        subject=subject,
        actor=actor,
        outcome=outcome,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )
    entries = await audit_trail.query(get_context(request), what)
    return no_store_json({"events": [e.to_json() for e in entries]})
