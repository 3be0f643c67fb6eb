"""The answer to each step of an authorization: the redirect back to the client, the
sign-in, consent or step-up page, or the error redirect.

The step itself is decided in :mod:`authmesh.server.oidc.flow`.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from authmesh.server.context import ServerContext
from authmesh.server.oidc.authorization import AuthorizationRequest
from authmesh.server.oidc.browser_sessions import BrowserSession
from authmesh.server.oidc.errors import AuthorizationError
from authmesh.server.oidc.flow import Next, error_redirect, next_step
from authmesh.server.routes.browser_forms import signed_form_page
from authmesh.server.routes.common import get_context
from authmesh.server.routes.mfa_pages import passkeys_usable, step_up_page
from authmesh.store.models import ClientRow

__all__ = ["answer_step", "continue_request", "form_page", "respond_to_step"]


_SCOPE_LABELS = {
    "openid": "Know who you are",
    "profile": "See your username",
    "email": "See your email address",
}


async def continue_request(
    request: Request,
    ctx: ServerContext,
    auth_request: AuthorizationRequest,
    client: ClientRow,
    browser: BrowserSession | None,
    *,
    status: int,
    message: str | None = None,
    just_consented: bool = False,
) -> Response:
    """The next step of the request (after a sign-in, a consent, or a refusal) and its answer."""
    try:
        step: Next | AuthorizationError = await next_step(
            ctx, auth_request, client, browser, just_consented=just_consented
        )
    except AuthorizationError as exc:
        step = exc
    return await answer_step(
        request, auth_request, client, browser, step, status=status, message=message
    )


async def answer_step(
    request: Request,
    auth_request: AuthorizationRequest,
    client: ClientRow,
    browser: BrowserSession | None,
    step: Next | AuthorizationError,
    *,
    status: int,
    message: str | None = None,
) -> Response:
    """The answer to a step already decided: its page or redirect, or the error redirect."""
    if isinstance(step, AuthorizationError):
        ctx = get_context(request)
        return RedirectResponse(
            error_redirect(ctx, auth_request.redirect_uri, auth_request.state, step), status
        )
    return await respond_to_step(
        request, auth_request, client, browser, step, status=status, message=message
    )


async def respond_to_step(
    request: Request,
    auth_request: AuthorizationRequest,
    client: ClientRow,
    browser: BrowserSession | None,
    step: Next,
    *,
    status: int,
    message: str | None = None,
) -> Response:
    """The redirect, step-up, consent or sign-in page of a step."""
    if step.action == "redirect":
        assert step.location is not None
        return RedirectResponse(step.location, status)
    if step.action == "step_up":
        assert browser is not None
        return await step_up_page(request, auth_request, client, browser)
    if step.action == "consent":
        assert browser is not None
        return form_page(
            request,
            "signin/consent.html",
            auth_request,
            client,
            purpose="consent",
            extra={"uid": browser.user_id},
            username=browser.username,
            scopes=[
                {"name": s, "label": _SCOPE_LABELS.get(s, f"Use {s}")} for s in auth_request.scopes
            ],
            action="/consent",
        )
    return form_page(
        request,
        "signin/login.html",
        auth_request,
        client,
        purpose="login",
        status_code=429 if message and message.startswith("Too many") else 200,
        message=message,
        username=auth_request.login_hint or "",
        action="/login",
        passkeys=passkeys_usable(request),
    )


def form_page(
    request: Request,
    template: str,
    auth_request: AuthorizationRequest,
    client: ClientRow,
    *,
    purpose: str,
    extra: dict[str, Any] | None = None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """A sign-in page whose signed form carries the authorization request."""
    return signed_form_page(
        request,
        template,
        purpose=purpose,
        state={"req": auth_request.to_json(), **(extra or {})},
        answer_goes_to=auth_request.redirect_uri,
        status_code=status_code,
        client_name=client.name or client.client_id,
        **context,
    )
