"""The signed-in user's own endpoints: userinfo, password change, logout."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from authmesh.errors import InsufficientScope
from authmesh.server import accounts
from authmesh.server.bearer import BearerPrincipal
from authmesh.server.errors import NotFound
from authmesh.server.oidc.consent import list_consents, revoke_consent
from authmesh.server.oidc.userinfo import userinfo_claims
from authmesh.server.routes.common import (
    NO_STORE,
    bearer_principal,
    get_context,
    no_store_json,
    request_info,
)

__all__ = ["router"]

router = APIRouter(tags=["account"])
Principal = Annotated[BearerPrincipal, Depends(bearer_principal)]


class PasswordChange(BaseModel):
    """Body of ``POST /account/password``."""

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


def _user_only(principal: BearerPrincipal) -> str:
    if principal.session_id is None:
        raise InsufficientScope("this endpoint needs a user's token, not a client's")
    return principal.session_id


@router.get("/userinfo", summary="Claims of the bearer's user")
async def userinfo(request: Request, principal: Principal) -> JSONResponse:
    """The user behind the token (OIDC Core §5.3)."""
    return await _userinfo(request, principal)


@router.post("/userinfo", summary="Claims of the bearer's user (POST)")
async def userinfo_post(request: Request, principal: Principal) -> JSONResponse:
    """The same as GET (OIDC Core §5.3: the endpoint supports both)."""
    return await _userinfo(request, principal)


async def _userinfo(request: Request, principal: BearerPrincipal) -> JSONResponse:
    scope = principal.claims.get("scope")
    body = await userinfo_claims(
        get_context(request),
        subject=principal.subject,
        username=principal.username,
        roles=principal.roles,
        scopes=scope.split() if isinstance(scope, str) else [],
    )
    return no_store_json(body)


@router.post("/account/password", summary="Change own password", status_code=204)
async def change_password(request: Request, body: PasswordChange, principal: Principal) -> Response:
    """Change the password; every session of the user ends and its tokens are revoked."""
    _user_only(principal)
    await get_context(request).guard.hit("account", request_info(request).client_ip)
    await accounts.change_password(
        get_context(request),
        principal.subject,
        current_password=body.current_password,
        new_password=body.new_password,
        info=request_info(request, actor=principal.username),
    )
    return Response(status_code=204, headers=NO_STORE)


@router.post("/account/logout", summary="End this session, or every session", status_code=204)
async def logout(
    request: Request,
    principal: Principal,
    all: Annotated[bool, Query(description="End every session of the user")] = False,
) -> Response:
    """Log out: this session, or with ``?all=true`` every session of the user."""
    sid = _user_only(principal)
    ctx = get_context(request)
    info = request_info(request, actor=principal.username)
    if all and principal.username is not None:
        await accounts.logout_all(ctx, principal.username, info=info)
    else:
        await accounts.logout(ctx, principal.subject, sid, info=info)
    return Response(status_code=204, headers=NO_STORE)


@router.get("/account/consents", summary="Third-party apps this user let in")
async def consents(request: Request, principal: Principal) -> JSONResponse:
    """The consents this user gave, by client."""
    _user_only(principal)
    found = await list_consents(get_context(request), principal.subject)
    return no_store_json(
        {
            "consents": [
                {"client_id": c.client_id, "scopes": c.scopes, "granted_at": c.granted_at}
                for c in found
            ]
        }
    )


@router.delete("/account/consents/{client_id}", summary="Withdraw a consent", status_code=204)
async def withdraw_consent(request: Request, client_id: str, principal: Principal) -> Response:
    """Withdraw a consent; the client's sessions of this user end and their tokens stop."""
    _user_only(principal)
    found = await revoke_consent(
        get_context(request),
        principal.subject,
        principal.username or principal.subject,
        client_id,
        info=request_info(request, actor=principal.username),
    )
    if not found:
        raise NotFound(f"no consent for {client_id[:100]!r}")
    return Response(status_code=204, headers=NO_STORE)
