"""The admin API for a user's second factors: see them, reset them (audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from authmesh.server.bearer import BearerPrincipal
from authmesh.server.mfa.admin import reset_user_factors, user_factors
from authmesh.server.routes.common import admin_principal, get_context, no_store_json, request_info

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["admin"])
Admin = Annotated[BearerPrincipal, Depends(admin_principal)]


@router.get("/users/{username}/mfa", summary="A user's second factors")
async def get_factors(request: Request, username: str, admin: Admin) -> JSONResponse:
    """Whether the user has MFA, their factors (never a secret) and recovery codes left."""
    found = await user_factors(get_context(request), username)
    return no_store_json(found.to_json())


@router.delete("/users/{username}/mfa", summary="Reset a user's second factors")
async def reset_factors(request: Request, username: str, admin: Admin) -> JSONResponse:
    """Remove every factor and recovery code; every session of the user ends."""
    removed = await reset_user_factors(
        get_context(request), username, info=request_info(request, actor=admin.username)
    )
    return no_store_json({"factors_removed": removed})
