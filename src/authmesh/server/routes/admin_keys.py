"""``/admin/keys``: the signing keys in the admin API (bearer with role ``admin``)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from authmesh.server import signing_keys
from authmesh.server.routes.admin import Admin
from authmesh.server.routes.common import get_context, no_store_json, request_info

__all__ = ["router"]

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/keys", summary="List the signing keys")
async def list_keys(request: Request, admin: Admin) -> JSONResponse:
    """Every key with its state (pending, active, retired, expired), newest first."""
    found = await signing_keys.list_keys(get_context(request))
    return no_store_json({"keys": [asdict(k) for k in found]})


@router.post("/keys/rotate", status_code=201, summary="Rotate the signing key now")
async def rotate(request: Request, admin: Admin) -> JSONResponse:
    """Publish a new key; it signs after the publish-ahead delay."""
    key = await signing_keys.rotate_now(
        get_context(request), info=request_info(request, actor=admin.username)
    )
    return no_store_json(asdict(key), status_code=201)
