"""The account's sign-in security pages (``/account/security``): set up an authenticator
app or a passkey, name and remove them, make new recovery codes.

The pages belong to the browser sign-in of this server (its SSO cookie). Adding
or removing a factor and new recovery codes need a sign-in younger than
``mfa_fresh_sign_in``; else the user signs in again (password and second factor).
Every form carries a CSRF token; every refusal is audited.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.server.errors import (
    AccessDenied,
    InvalidGrant,
    InvalidRequest,
    NotFound,
    RateLimited,
)
from authmesh.server.login import verify_login
from authmesh.server.mfa import factors
from authmesh.server.oidc.browser_sessions import BrowserSession, open_sign_in
from authmesh.server.oidc.flow import Next
from authmesh.server.routes.browser_forms import (
    browser_session,
    cookie_jar,
    error_page,
    posted_signed_form,
    signed_form_page,
)
from authmesh.server.routes.common import get_context, request_info
from authmesh.server.routes.mfa_account_forms import (
    HOME,
    LOGIN_FORM,
    PAGE_FORM,
    PASSKEY_FORM,
    TOTP_FORM,
    checked_form,
    page_state,
    passkey_page,
    reauth_if_stale,
    sign_in_page,
    totp_page,
)
from authmesh.server.routes.mfa_pages import after_password, passkey_sign_in_page
from authmesh.server.routes.mfa_pending import ACCOUNT_CLIENT, Continuation
from authmesh.server.web.errors import InvalidForm
from authmesh.server.web.render import page
from authmesh.store import users as user_store

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/account/security")
async def security(request: Request) -> Response:
    """The user's second factors and recovery codes, with what can be done about them."""
    browser = await browser_session(request)
    if browser is None:
        return sign_in_page(request)
    found = await factors.list_factors(get_context(request), browser.user_id)
    return signed_form_page(
        request,
        "mfa/security.html",
        purpose=PAGE_FORM,
        state=page_state(browser),
        answer_goes_to=None,
        username=browser.username,
        factors=found.factors,
        recovery_left=found.recovery_codes_left,
        passkeys=factors.relying_party(get_context(request)).usable,
    )


@router.get("/account/security/signin")
async def sign_in_again(request: Request) -> Response:
    """The sign-in form of the security pages (also to sign in again)."""
    browser = await browser_session(request)
    return sign_in_page(request, username=browser.username if browser else "")


@router.post("/account/security/signin")
async def sign_in(request: Request) -> Response:
    """Password, then the second factor if the user has one, then the security page."""
    ctx = get_context(request)
    try:
        form, _ = await posted_signed_form(request, LOGIN_FORM)
    except InvalidForm as exc:
        return error_page(f"{exc} Open your security settings again.")
    cont = Continuation(None, HOME)
    if form.get("method") == "passkey":
        return passkey_sign_in_page(request, cont, None)
    username = (form.get("username") or "")[:150]
    password = (form.get("password") or "")[:1024]
    info = request_info(request, actor=ACCOUNT_CLIENT)
    try:
        if not username or not password:
            raise InvalidGrant("missing")
        async with ctx.db.transaction() as session:
            user = await user_store.get_user(session, username)
        verified = await verify_login(
            ctx, user, username, password, info=info, client_id=ACCOUNT_CLIENT
        )
    except (InvalidGrant, RateLimited) as exc:
        message = "Invalid username or password."
        if isinstance(exc, RateLimited):
            message = (
                f"Too many sign-in attempts. Try again in {int(exc.retry_after or 60)} seconds."
            )
        return sign_in_page(
            request,
            message=message,
            username=username,
            status_code=429 if isinstance(exc, RateLimited) else 200,
        )
    second_step = await after_password(request, verified.user, cont, None)
    if second_step is not None:
        return second_step

    async def then(session: AsyncSession, browser: BrowserSession) -> Next:
        return Next("redirect", HOME)

    signed, _ = await open_sign_in(
        ctx,
        verified.user,
        amr=["pwd"],
        client_id=ACCOUNT_CLIENT,
        info=info,
        then=then,
        new_hash=verified.new_hash,
    )
    response = RedirectResponse(HOME, 303)
    jar = cookie_jar(ctx)
    jar.set(response, jar.session_name, signed.cookie_secret)
    return response


@router.post("/account/security/factors/{factor_id}/remove")
async def remove(request: Request, factor_id: str) -> Response:
    """Remove a factor (a recent sign-in needed); the user's other sessions end."""
    checked = await checked_form(request, PAGE_FORM, "mfa_remove")
    if isinstance(checked, Response):
        return checked
    _form_fields, _state, browser = checked
    stale = await reauth_if_stale(request, browser, "mfa_remove")
    if stale is not None:
        return stale
    try:
        await factors.remove_factor(
            get_context(request),
            browser.user_id,
            browser.username,
            factor_id[:40],
            keep_session=browser.id,
            info=request_info(request, actor=browser.username),
        )
    except NotFound:
        return _factor_gone()
    return RedirectResponse(HOME, 303)


@router.post("/account/security/factors/{factor_id}/rename")
async def rename(request: Request, factor_id: str) -> Response:
    """Give a factor a name the user recognises."""
    checked = await checked_form(request, PAGE_FORM, "mfa_rename")
    if isinstance(checked, Response):
        return checked
    fields, _state, browser = checked
    try:
        await factors.rename_factor(
            get_context(request),
            browser.user_id,
            browser.username,
            factor_id[:40],
            fields.get("name", ""),
            info=request_info(request, actor=browser.username),
        )
    except NotFound:
        return _factor_gone()
    return RedirectResponse(HOME, 303)


@router.post("/account/security/recovery-codes")
async def new_recovery_codes(request: Request) -> Response:
    """Ten new recovery codes (a recent sign-in needed); the old ones stop working."""
    checked = await checked_form(request, PAGE_FORM, "mfa_recovery_codes")
    if isinstance(checked, Response):
        return checked
    _fields, _state, browser = checked
    stale = await reauth_if_stale(request, browser, "mfa_recovery_codes")
    if stale is not None:
        return stale
    try:
        codes = await factors.regenerate_recovery_codes(
            get_context(request),
            browser.user_id,
            browser.username,
            info=request_info(request, actor=browser.username),
        )
    except AccessDenied as exc:  # no factor to back up
        return error_page(exc.description, status_code=403, heading="Not changed")
    return page("mfa/recovery_codes.html", codes=codes, form=None, back=HOME)


@router.get("/account/security/totp")
async def totp_form(request: Request) -> Response:
    """A new authenticator secret to scan (a recent sign-in needed)."""
    browser = await browser_session(request)
    if browser is None:
        return sign_in_page(request)
    stale = await reauth_if_stale(request, browser, "mfa_enrol")
    return stale or totp_page(request, browser)


@router.post("/account/security/totp")
async def totp_confirm(request: Request) -> Response:
    """The code proves the app has the secret: the authenticator is on."""
    checked = await checked_form(request, TOTP_FORM, "mfa_enrol")
    if isinstance(checked, Response):
        return checked
    fields, state, browser = checked
    stale = await reauth_if_stale(request, browser, "mfa_enrol")
    if stale is not None:
        return stale
    secret = str(state.get("secret") or "")
    try:
        codes = await factors.confirm_totp(
            get_context(request),
            browser.user_id,
            browser.username,
            secret=secret,
            code=fields.get("code", ""),
            name=fields.get("name", ""),
            info=request_info(request, actor=browser.username),
        )
    except InvalidRequest as exc:
        return totp_page(request, browser, secret=secret, message=exc.description)
    if codes:
        return page("mfa/recovery_codes.html", codes=codes, form=None, back=HOME)
    return RedirectResponse(HOME, 303)


@router.get("/account/security/passkeys/new")
async def passkey_form(request: Request) -> Response:
    """The page that asks the browser to create a passkey (a recent sign-in needed)."""
    browser = await browser_session(request)
    if browser is None:
        return sign_in_page(request)
    stale = await reauth_if_stale(request, browser, "mfa_enrol")
    if stale is not None:
        return stale
    options = await factors.passkey_registration(
        get_context(request), browser.user_id, browser.username, discoverable=True
    )
    return passkey_page(request, browser, options)


@router.post("/account/security/passkeys")
async def passkey_register(request: Request) -> Response:
    """Verify the new passkey against this page's challenge and store it."""
    ctx = get_context(request)
    checked = await checked_form(request, PASSKEY_FORM, "mfa_enrol")
    if isinstance(checked, Response):
        return checked
    fields, state, browser = checked
    stale = await reauth_if_stale(request, browser, "mfa_enrol")
    if stale is not None:
        return stale
    try:
        codes = await factors.register_passkey(
            ctx,
            browser.user_id,
            browser.username,
            credential_json=fields.get("credential", ""),
            challenge_hex=str(state.get("ch") or ""),
            name=fields.get("name", ""),
            passwordless=fields.get("passwordless") == "yes",
            info=request_info(request, actor=browser.username),
        )
    except InvalidRequest:
        options = await factors.passkey_registration(
            ctx, browser.user_id, browser.username, discoverable=True
        )
        return passkey_page(
            request, browser, options, message="The passkey could not be added. Try again."
        )
    if codes:
        return page("mfa/recovery_codes.html", codes=codes, form=None, back=HOME)
    return RedirectResponse(HOME, 303)


def _factor_gone() -> Response:
    """The answer to a change of a factor that is not the user's, or no longer exists."""
    return error_page(
        "That factor is not yours or is gone.", status_code=404, heading="Not changed"
    )
