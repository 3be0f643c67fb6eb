"""What every browser page of the server shares: the cookie settings, the form signer,
the live browser sign-in of a request, plain error pages, and pages whose form
carries signed state and a CSRF token.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from authmesh.server.context import ServerContext
from authmesh.server.errors import InvalidRequest
from authmesh.server.oidc.browser_sessions import BrowserSession, current_browser_session
from authmesh.server.routes.common import Form, get_context, read_form
from authmesh.server.web.cookies import CookieJar
from authmesh.server.web.errors import InvalidForm
from authmesh.server.web.forms import FormSigner
from authmesh.server.web.render import origin_of, page

__all__ = [
    "browser_session",
    "cookie_jar",
    "error_page",
    "form_signer",
    "signed_form_page",
]


def cookie_jar(ctx: ServerContext) -> CookieJar:
    """The cookie settings for this server's issuer URL."""
    return CookieJar.for_issuer(ctx.issuer.issuer)


def form_signer(request: Request) -> FormSigner:
    """The app's form signer, made once from the server's web secret."""
    state = request.app.state
    signer: FormSigner | None = getattr(state, "form_signer", None)
    if signer is None:
        signer = state.form_signer = FormSigner(get_context(request).web_key)
    return signer


async def posted_signed_form(request: Request, purpose: str) -> tuple[Form, dict[str, Any]]:
    """The posted form and the state it carries, signed for ``purpose``, its CSRF token
    checked against the browser's cookie.

    Raises:
        InvalidForm: an unreadable, forged, expired or cross-site form.
    """
    try:
        form = await read_form(request)
    except InvalidRequest as exc:
        raise InvalidForm(exc.description) from None
    signer = form_signer(request)
    csrf_cookie = request.cookies.get(cookie_jar(get_context(request)).csrf_name)
    signer.check_csrf(csrf_cookie, form.get("csrf_token"))
    return form, signer.loads(purpose, form.get("request"))


async def browser_session(request: Request) -> BrowserSession | None:
    """The live browser sign-in of this request's cookie, if any."""
    ctx = get_context(request)
    return await current_browser_session(ctx, request.cookies.get(cookie_jar(ctx).session_name))


def error_page(
    message: str, *, status_code: int = 400, heading: str = "Sign-in failed"
) -> Response:
    """A plain error page: never a redirect, never a traceback."""
    return page("signin/error.html", status_code=status_code, heading=heading, message=message)


def signed_form_page(
    request: Request,
    template: str,
    *,
    purpose: str,
    state: dict[str, Any],
    answer_goes_to: str | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """A page whose form carries ``state`` signed for ``purpose`` and a CSRF token.

    The CSRF cookie is set when the browser has none (or a forged one); the page's
    CSP lets the form's answer redirect to the origin of ``answer_goes_to``.
    """
    jar = cookie_jar(get_context(request))
    signer = form_signer(request)
    csrf_cookie = request.cookies.get(jar.csrf_name) or ""
    fresh = not csrf_cookie or len(csrf_cookie) > 100
    if fresh:
        csrf_cookie = signer.new_cookie_value()
    form = {"csrf_token": signer.csrf_token(csrf_cookie), "request": signer.dumps(purpose, state)}
    target = origin_of(answer_goes_to) if answer_goes_to else None
    response = page(
        template,
        status_code=status_code,
        form_targets=[target] if target else [],
        form=form,
        **context,
    )
    if fresh:
        jar.set(response, jar.csrf_name, csrf_cookie)
    return response
