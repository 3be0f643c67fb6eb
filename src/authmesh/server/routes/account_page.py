"""``/account``: the signed-in user's page: profile, password, sessions, apps, events.

Routes parse and render; the work is done by the same service functions as
the account API (:mod:`authmesh.server.accounts`, :mod:`authmesh.server.oidc.consent`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from authmesh.server import accounts
from authmesh.server import audit as audit_trail
from authmesh.server.account_sessions import end_own_session, list_own_sessions
from authmesh.server.console.sign_in import ConsoleSignIn
from authmesh.server.errors import OAuthError
from authmesh.server.oidc.consent import list_consents, revoke_consent
from authmesh.server.routes.browser_forms import cookie_jar
from authmesh.server.routes.common import get_context
from authmesh.server.routes.console_common import (
    AccountForm,
    SignedIn,
    actor_info,
    console_page,
)
from authmesh.server.web.render import page

__all__ = ["router"]

router = APIRouter(tags=["consoles"], include_in_schema=False)

#: The account's own security events shown on the page.
_EVENTS = 25
_DONE = {
    "session_ended": "That session is signed out.",
    "app_revoked": "The app no longer has access.",
}


async def _render(
    request: Request,
    user: ConsoleSignIn,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    ctx = get_context(request)
    sessions = await list_own_sessions(
        ctx, user.user_id, current_sid=user.parent_id or user.session_id
    )
    consents = await list_consents(ctx, user.user_id)
    events = await audit_trail.query(
        ctx, audit_trail.AuditQuery(subject=user.username, limit=_EVENTS)
    )
    return console_page(
        request,
        "console/account.html",
        user,
        status_code=status_code,
        sessions=sessions,
        consents=consents,
        events=events,
        done=_DONE.get(request.query_params.get("done", "")),
        error=error,
    )


@router.get("/account")
async def account(request: Request, user: SignedIn) -> Response:
    """The account page."""
    return await _render(request, user)


@router.post("/account/change-password")
async def change_password(request: Request, posted: AccountForm) -> Response:
    """Change the password; every session ends (this one too), so the user signs in again."""
    user, form = posted
    ctx = get_context(request)
    new_password = form.get("new_password") or ""
    if new_password != (form.get("confirm_password") or ""):
        return await _render(
            request, user, error="The new passwords do not match.", status_code=400
        )
    try:
        await ctx.guard.hit("account", actor_info(request, user).client_ip)
        await accounts.change_password(
            ctx,
            user.user_id,
            current_password=form.get("current_password") or "",
            new_password=new_password,
            info=actor_info(request, user),
        )
    except OAuthError as exc:
        return await _render(request, user, error=_password_error(exc), status_code=400)
    response = page("console/password_changed.html")
    jar = cookie_jar(ctx)
    jar.clear(response, jar.console_name)
    jar.clear(response, jar.session_name)
    return response


def _password_error(exc: OAuthError) -> str:
    if exc.error == "access_denied":
        return "The current password is wrong."
    if exc.error == "rate_limited" or exc.status == 429:
        return "Too many attempts. Try again in a minute."
    return f"The new password was refused: {exc.description}"


@router.post("/account/sessions/end")
async def end_session(request: Request, posted: AccountForm) -> Response:
    """Sign out one session of this user (and the apps that use it)."""
    user, form = posted
    await end_own_session(
        get_context(request),
        user.user_id,
        user.username,
        form.get("session_id") or "",
        info=actor_info(request, user),
    )
    return RedirectResponse("/account?done=session_ended", 303)


@router.post("/account/sessions/end-all")
async def end_all_sessions(request: Request, posted: AccountForm) -> Response:
    """Sign out everywhere: every session of this user ends, this one too."""
    user, _form = posted
    ctx = get_context(request)
    await accounts.logout_all(ctx, user.username, info=actor_info(request, user))
    response = page("signin/signed_out.html")
    jar = cookie_jar(ctx)
    jar.clear(response, jar.console_name)
    jar.clear(response, jar.session_name)
    return response


@router.post("/account/apps/revoke")
async def revoke_app(request: Request, posted: AccountForm) -> Response:
    """Withdraw the consent given to a third-party app; its sessions of this user end."""
    user, form = posted
    await revoke_consent(
        get_context(request),
        user.user_id,
        user.username,
        form.get("client_id") or "",
        info=actor_info(request, user),
    )
    return RedirectResponse("/account?done=app_revoked", 303)
