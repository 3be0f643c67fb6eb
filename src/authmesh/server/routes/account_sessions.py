"""``/account/sessions``: the bearer's user lists and ends their own sessions."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from authmesh.errors import InsufficientScope
from authmesh.server.account_sessions import end_own_session, list_own_sessions
from authmesh.server.errors import NotFound
from authmesh.server.routes.account import Principal
from authmesh.server.routes.common import NO_STORE, get_context, no_store_json, request_info

__all__ = ["router"]

router = APIRouter(tags=["account"])


@router.get("/account/sessions", summary="The user's own open sessions")
async def sessions(request: Request, principal: Principal) -> JSONResponse:
    """One entry per sign-in, with the apps signed in through it; the token's own is ``current``."""
    if principal.session_id is None:
        raise InsufficientScope("this endpoint needs a user's token, not a client's")
    found = await list_own_sessions(
        get_context(request), principal.subject, current_sid=principal.session_id
    )
    return no_store_json({"sessions": [asdict(s) for s in found]})


@router.delete("/account/sessions/{sid}", status_code=204, summary="End one of the user's sessions")
async def end_session(request: Request, sid: str, principal: Principal) -> Response:
    """End a sign-in of this user and the app sessions opened from it (404 for anyone else's)."""
    if principal.session_id is None:
        raise InsufficientScope("this endpoint needs a user's token, not a client's")
    ended = await end_own_session(
        get_context(request),
        principal.subject,
        principal.username or principal.subject,
        sid,
        info=request_info(request, actor=principal.username),
    )
    if not ended:
        raise NotFound("no open session of yours with this id")
    return Response(status_code=204, headers=NO_STORE)
