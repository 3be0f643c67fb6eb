"""``/logout``: the end-session endpoint (OpenID Connect RP-Initiated Logout 1.0)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from authmesh.server.errors import InvalidRequest
from authmesh.server.oidc.browser_sessions import sign_out
from authmesh.server.oidc.errors import LogoutRequestError
from authmesh.server.oidc.flow import client_redirect
from authmesh.server.oidc.logout import LogoutRequest, validate_logout_request
from authmesh.server.routes.browser_forms import (
    browser_session,
    cookie_jar,
    error_page,
    form_signer,
    signed_form_page,
)
from authmesh.server.routes.common import get_context, read_form, request_info
from authmesh.server.web.errors import InvalidForm
from authmesh.server.web.render import page

__all__ = ["router"]

router = APIRouter(tags=["sign-in"], include_in_schema=False)
_PARAMS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state")


@router.get("/logout")
async def logout_get(request: Request) -> Response:
    """Sign out: at once with a matching ``id_token_hint``, else after a confirmation."""
    params = {name: request.query_params.get(name) or None for name in _PARAMS}
    return await _logout(request, params, confirmed=False)


@router.post("/logout")
async def logout_post(request: Request) -> Response:
    """The same parameters as a form, or the confirmation form's answer."""
    try:
        form = await read_form(request)
    except InvalidRequest as exc:
        return error_page(exc.description, heading="Sign-out failed")
    if form.get("confirm") == "yes":
        ctx = get_context(request)
        signer = form_signer(request)
        try:
            signer.check_csrf(
                request.cookies.get(cookie_jar(ctx).csrf_name), form.get("csrf_token")
            )
            params = signer.loads("logout", form.get("request"))
        except InvalidForm as exc:
            return error_page(str(exc), heading="Sign-out failed")
        return await _logout(request, params, confirmed=True)
    return await _logout(request, {n: form.get(n) for n in _PARAMS}, confirmed=False)


async def _logout(request: Request, params: dict[str, str | None], *, confirmed: bool) -> Response:
    ctx = get_context(request)
    try:
        checked = await validate_logout_request(
            ctx,
            id_token_hint=params.get("id_token_hint"),
            client_id=params.get("client_id"),
            post_logout_redirect_uri=params.get("post_logout_redirect_uri"),
            state=params.get("state"),
        )
    except LogoutRequestError as exc:
        return error_page(str(exc), heading="Sign-out failed")
    browser = await browser_session(request)
    if browser is not None:
        hinted = checked.hinted_subject is not None and checked.hinted_subject == browser.user_id
        if not (hinted or confirmed):
            return _confirmation(request, params, checked, browser.username)
        await sign_out(
            ctx,
            browser,
            info=request_info(request, actor=browser.username),
            client_id=checked.client_id,
        )
    if checked.redirect_to is not None:
        response: Response = RedirectResponse(
            client_redirect(checked.redirect_to, {"state": checked.state}), 303
        )
    else:
        response = page("signin/signed_out.html")
    cookie_jar(ctx).clear(response, cookie_jar(ctx).session_name)
    return response


def _confirmation(
    request: Request, params: dict[str, str | None], checked: LogoutRequest, username: str
) -> Response:
    return signed_form_page(
        request,
        "signin/logout.html",
        purpose="logout",
        state={k: v for k, v in params.items() if v is not None},
        answer_goes_to=checked.redirect_to,
        username=username,
        action="/logout",
    )
