"""The forms of the account's security pages: the sign-in form, the authenticator and
passkey forms, and the check of a posted form (CSRF token, signed state, the same
live sign-in, a sign-in recent enough). Every refusal is audited.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from authmesh.server import audit
from authmesh.server.mfa import factors, totp
from authmesh.server.oidc.browser_sessions import BrowserSession
from authmesh.server.routes.browser_forms import (
    browser_session,
    error_page,
    posted_signed_form,
    signed_form_page,
)
from authmesh.server.routes.common import get_context, request_info
from authmesh.server.routes.mfa_pages import with_own_script
from authmesh.server.routes.mfa_pending import Continuation
from authmesh.server.web.errors import InvalidForm
from authmesh.server.web.render import page

__all__ = [
    "HOME",
    "LOGIN_FORM",
    "PAGE_FORM",
    "PASSKEY_FORM",
    "TOTP_FORM",
    "checked_form",
    "page_state",
    "passkey_page",
    "reauth_if_stale",
    "sign_in_page",
    "totp_page",
]


HOME = "/account/security"
LOGIN_FORM = "account_login"
PAGE_FORM = "account_security"
TOTP_FORM = "account_totp"
PASSKEY_FORM = "account_passkey"


def sign_in_page(
    request: Request, *, message: str | None = None, username: str = "", status_code: int = 200
) -> Response:
    """The sign-in form of the security pages."""
    return signed_form_page(
        request,
        "signin/login.html",
        purpose=LOGIN_FORM,
        state={"cont": Continuation(None, HOME).to_json()},
        answer_goes_to=None,
        status_code=status_code,
        client_name="your account settings",
        username=username,
        message=message,
        action="/account/security/signin",
        passkeys=factors.relying_party(get_context(request)).usable,
    )


async def _refused(
    request: Request, action: str, reason: str, browser: BrowserSession | None
) -> None:
    ctx = get_context(request)
    subject = browser.username if browser else None
    async with ctx.db.transaction() as session:
        await audit.record(
            ctx,
            session,
            action,
            outcome="failure",
            info=request_info(request, actor=subject),
            subject=subject,
            reason=reason[:200],
        )


async def checked_form(
    request: Request, purpose: str, action: str
) -> tuple[dict[str, str], dict[str, Any], BrowserSession] | Response:
    """The posted form of a signed-in page: CSRF token, signed state, the same live
    sign-in that was shown the page. A refusal is audited and answered with a page."""
    browser = await browser_session(request)
    try:
        form, state = await posted_signed_form(request, purpose)
        if browser is None or state.get("sid") != browser.id:
            raise InvalidForm("your sign-in changed since the page was shown")
    except InvalidForm as exc:
        await _refused(request, action, f"form: {exc}", browser)
        return error_page(f"{exc} Open your security settings again.", heading="Not changed")
    return form.single, state, browser


async def reauth_if_stale(
    request: Request, browser: BrowserSession, action: str
) -> Response | None:
    """A page asking to sign in again if the sign-in is too old for ``action``."""
    ctx = get_context(request)
    if ctx.now() - browser.auth_time <= ctx.settings.mfa_fresh_sign_in:
        return None
    await _refused(request, action, "stale_sign_in", browser)
    return page(
        "mfa/reauth.html",
        status_code=403,
        message="To change how you sign in, sign in again first.",
    )


def page_state(browser: BrowserSession, **extra: Any) -> dict[str, Any]:
    """The signed state of a security page: its user and live sign-in."""
    return {"uid": browser.user_id, "sid": browser.id, **extra}


def totp_page(
    request: Request,
    browser: BrowserSession,
    *,
    secret: str | None = None,
    message: str | None = None,
) -> Response:
    """The page to set up an authenticator app (the same secret after a wrong code)."""
    ctx = get_context(request)
    offer = factors.start_totp(ctx, browser.username)
    if secret is not None:
        uri = totp.provisioning_uri(
            secret, username=browser.username, issuer_name=ctx.settings.realm
        )
        offer = factors.TotpEnrolment(secret, uri, totp.qr_svg(uri))
    return signed_form_page(
        request,
        "mfa/enrol_totp.html",
        purpose=TOTP_FORM,
        state=page_state(browser, secret=offer.secret),
        answer_goes_to=None,
        qr_svg=offer.qr_svg,
        secret_display=" ".join(offer.secret[i : i + 4] for i in range(0, len(offer.secret), 4)),
        required=False,
        named=True,
        cancel=HOME,
        message=message,
        action="/account/security/totp",
    )


def passkey_page(
    request: Request,
    browser: BrowserSession,
    options: factors.PasskeyChallenge,
    message: str | None = None,
) -> Response:
    """The page that asks the browser to create a passkey."""
    response = signed_form_page(
        request,
        "mfa/passkey_new.html",
        purpose=PASSKEY_FORM,
        state=page_state(browser, ch=options.challenge),
        answer_goes_to=None,
        options=options.options_json,
        back=HOME,
        message=message,
        action="/account/security/passkeys",
    )
    return with_own_script(response)
