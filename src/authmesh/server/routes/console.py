"""The consoles' own sign-in: ``/console/signin`` starts it, ``/console/callback`` ends it.

The auth server is a client of itself here (see :mod:`authmesh.server.console`).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from authmesh.server.account_sessions import end_own_session
from authmesh.server.console.sign_in import PendingSignIn, finish_sign_in, start_sign_in
from authmesh.server.errors import OAuthError
from authmesh.server.routes.browser_forms import cookie_jar, form_signer
from authmesh.server.routes.common import get_context
from authmesh.server.routes.console_common import AccountForm, actor_info, refused_page
from authmesh.server.web.errors import InvalidForm
from authmesh.server.web.render import page

__all__ = ["router"]

router = APIRouter(tags=["consoles"], include_in_schema=False)
_PENDING = "console-signin"


@router.get("/console/signin")
async def console_sign_in(request: Request) -> Response:
    """Start a console sign-in: to ``/authorize`` with a fresh PKCE verifier and state."""
    ctx = get_context(request)
    pending, location = await start_sign_in(
        ctx,
        request.query_params.get("next"),
        again=request.query_params.get("again") == "1",
    )
    response = RedirectResponse(location, 303)
    jar = cookie_jar(ctx)
    jar.set(
        response, jar.console_pending_name, form_signer(request).dumps(_PENDING, pending.to_json())
    )
    return response


@router.get("/console/callback")
async def console_callback(request: Request) -> Response:
    """Finish a console sign-in: check the state, exchange the code, open the console session."""
    ctx = get_context(request)
    jar = cookie_jar(ctx)
    params = request.query_params
    try:
        data = form_signer(request).loads(_PENDING, request.cookies.get(jar.console_pending_name))
        pending = PendingSignIn.from_json(data)
    except (InvalidForm, KeyError):
        return refused_page(
            request, "This sign-in was not started here or took too long.", status_code=400
        )
    if not hmac.compare_digest(pending.state.encode(), params.get("state", "").encode()):
        return refused_page(request, "This sign-in was not started here.", status_code=400)
    code = params.get("code")
    if not code:
        return refused_page(request, "The sign-in did not complete.", status_code=400)
    try:
        secret = await finish_sign_in(
            ctx, pending, code, client_ip=request.client.host if request.client else None
        )
    except OAuthError:
        return refused_page(request, "The sign-in did not complete.", status_code=400)
    response = RedirectResponse(pending.next, 303)
    jar.set(response, jar.console_name, secret)
    jar.clear(response, jar.console_pending_name)
    return response


@router.post("/console/signout")
async def console_sign_out(request: Request, posted: AccountForm) -> Response:
    """Sign out of the browser sign-in the console uses (and every app that uses it)."""
    user, _form = posted
    await end_own_session(
        get_context(request),
        user.user_id,
        user.username,
        user.parent_id or user.session_id,
        info=actor_info(request, user),
    )
    response = page("signin/signed_out.html")
    jar = cookie_jar(get_context(request))
    jar.clear(response, jar.console_name)
    jar.clear(response, jar.session_name)
    return response
