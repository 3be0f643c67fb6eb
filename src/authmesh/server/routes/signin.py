"""The browser sign-in: ``/authorize`` (OIDC Core §3.1.2), the sign-in and consent forms.

Routes parse and render; the decisions live in :mod:`authmesh.server.oidc`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.server import accounts
from authmesh.server.context import RequestInfo, ServerContext
from authmesh.server.errors import InvalidGrant, InvalidRequest, RateLimited
from authmesh.server.login import verify_login
from authmesh.server.login_limits import TemporarilyUnavailable
from authmesh.server.oidc.authorization import AuthorizationRequest
from authmesh.server.oidc.browser_sessions import (
    BrowserSession,
    SignedIn,
    current_browser_session,
    open_sign_in,
    read_sign_in,
)
from authmesh.server.oidc.consent import grant_consent
from authmesh.server.oidc.errors import AuthorizationError, UntrustedRedirect
from authmesh.server.oidc.flow import (
    Next,
    after_sign_in,
    error_redirect,
    next_step,
    start_authorization,
)
from authmesh.server.oidc.redirect_uris import redirect_uri_matches
from authmesh.server.routes import mfa_signin
from authmesh.server.routes.common import get_context, read_form, request_info
from authmesh.server.web.cookies import CookieJar
from authmesh.server.web.errors import InvalidForm
from authmesh.server.web.forms import FormSigner
from authmesh.server.web.render import origin_of, page
from authmesh.store import clients as client_store
from authmesh.store import users as user_store
from authmesh.store.models import ClientRow, UserRow

__all__ = [
    "browser_session",
    "cookie_jar",
    "error_page",
    "form_signer",
    "router",
    "signed_form_page",
]

router = APIRouter(tags=["sign-in"], include_in_schema=False)

_SCOPE_LABELS = {
    "openid": "Know who you are",
    "profile": "See your username",
    "email": "See your email address",
}
_MAX_QUERY = 8192


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


async def browser_session(request: Request) -> BrowserSession | None:
    """The live browser sign-in of this request's cookie, if any."""
    ctx = get_context(request)
    return await current_browser_session(ctx, request.cookies.get(cookie_jar(ctx).session_name))


def error_page(
    message: str, *, status_code: int = 400, heading: str = "Sign-in failed"
) -> Response:
    """A plain error page: never a redirect, never a traceback."""
    return page("signin/error.html", status_code=status_code, heading=heading, message=message)


def _params(pairs: list[tuple[str, str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in pairs:
        if "\x00" in value:
            raise UntrustedRedirect("the request contains a NUL character")
        if name in params:
            raise UntrustedRedirect(f"the parameter {name[:40]!r} is repeated")
        if value:
            params[name] = value
    return params


async def _authorize_params(request: Request) -> dict[str, str]:
    if request.method == "POST":
        try:
            form = await read_form(request)
        except InvalidRequest as exc:
            raise UntrustedRedirect(exc.description) from None
        return form.single
    query = request.url.query
    if len(query) > _MAX_QUERY:
        raise UntrustedRedirect("the request is too long")
    try:
        return _params(parse_qsl(query, keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError:
        raise UntrustedRedirect("the request is not valid UTF-8") from None


@router.api_route("/authorize", methods=["GET", "POST"])
async def authorize(request: Request) -> Response:
    """The authorization endpoint: sign in (or reuse the SSO session), consent, code."""
    ctx = get_context(request)
    try:
        params = await _authorize_params(request)
        cookie = request.cookies.get(cookie_jar(ctx).session_name)
        started = await start_authorization(ctx, params, cookie)
    except UntrustedRedirect as exc:
        return error_page(exc.description)
    except AuthorizationError as exc:
        # Only reached once the client and its redirect URI are known good.
        return RedirectResponse(
            error_redirect(ctx, params["redirect_uri"], params.get("state"), exc), 302
        )
    return await _respond(
        request, started.request, started.client, started.browser, started.step, status=302
    )


async def _continue(
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
    try:
        step: Next | AuthorizationError = await next_step(
            ctx, auth_request, client, browser, just_consented=just_consented
        )
    except AuthorizationError as exc:
        step = exc
    return await _answer(
        request, auth_request, client, browser, step, status=status, message=message
    )


async def _answer(
    request: Request,
    auth_request: AuthorizationRequest,
    client: ClientRow,
    browser: BrowserSession | None,
    step: Next | AuthorizationError,
    *,
    status: int,
    message: str | None = None,
) -> Response:
    if isinstance(step, AuthorizationError):
        ctx = get_context(request)
        return RedirectResponse(
            error_redirect(ctx, auth_request.redirect_uri, auth_request.state, step), status
        )
    return await _respond(
        request, auth_request, client, browser, step, status=status, message=message
    )


async def _respond(
    request: Request,
    auth_request: AuthorizationRequest,
    client: ClientRow,
    browser: BrowserSession | None,
    step: Next,
    *,
    status: int,
    message: str | None = None,
) -> Response:
    if step.action == "redirect":
        assert step.location is not None
        return RedirectResponse(step.location, status)
    if step.action == "step_up":
        assert browser is not None
        return await mfa_signin.step_up_page(request, auth_request, client, browser)
    if step.action == "consent":
        assert browser is not None
        return _form_page(
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
    return _form_page(
        request,
        "signin/login.html",
        auth_request,
        client,
        purpose="login",
        status_code=429 if message and message.startswith("Too many") else 200,
        message=message,
        username=auth_request.login_hint or "",
        action="/login",
        passkeys=mfa_signin.passkeys_usable(request),
    )


def _form_page(
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


async def _posted_form(
    request: Request, purpose: str
) -> tuple[dict[str, str], dict[str, Any], AuthorizationRequest]:
    """The posted form, its signed state, and the request it continues.

    Raises:
        InvalidForm: a forged, foreign, stale or cross-site form.
    """
    ctx = get_context(request)
    try:
        form = await read_form(request)
    except InvalidRequest as exc:
        raise InvalidForm(exc.description) from None
    signer = form_signer(request)
    signer.check_csrf(request.cookies.get(cookie_jar(ctx).csrf_name), form.get("csrf_token"))
    state = signer.loads(purpose, form.get("request"))
    try:
        auth_request = AuthorizationRequest.from_json(state["req"])
    except (KeyError, TypeError, ValueError):
        raise InvalidForm("the form is incomplete") from None
    return form.single, state, auth_request


def _still_registered(client: ClientRow | None, auth_request: AuthorizationRequest) -> ClientRow:
    """The client, unless it changed since the form was shown.

    Raises:
        InvalidForm: the client is gone or no longer has the redirect URI.
    """
    if client is None or not redirect_uri_matches(client.redirect_uris, auth_request.redirect_uri):
        raise InvalidForm("the application is no longer registered for this sign-in")
    return client


async def _after_password(
    request: Request,
    ctx: ServerContext,
    auth_request: AuthorizationRequest,
    client: ClientRow,
    user: UserRow | None,
    username: str,
    password: str,
    info: RequestInfo,
    then: Callable[[AsyncSession, BrowserSession], Awaitable[Next | AuthorizationError]],
    *,
    has_factors: bool,
) -> Response | tuple[SignedIn, Next | AuthorizationError]:
    """Check the password; then either the second-factor page, or the opened sign-in.

    ``has_factors``: whether the user has a second factor, as read with the user.

    Raises:
        InvalidGrant / RateLimited / TemporarilyUnavailable: as :func:`verify_login`.
    """
    verified = await verify_login(
        ctx, user, username, password, info=info, client_id=client.client_id
    )
    second_step = await mfa_signin.after_password(
        request,
        verified.user,
        mfa_signin.Continuation(auth_request),
        client,
        has_factors=has_factors,
    )
    if second_step is not None:
        return second_step
    return await open_sign_in(
        ctx,
        verified.user,
        amr=["pwd"],
        client_id=client.client_id,
        info=info,
        then=then,
        new_hash=verified.new_hash,
    )


@router.post("/login")
async def login(request: Request) -> Response:
    """The sign-in form: check the password, open the SSO session, continue the request."""
    ctx = get_context(request)
    try:
        form, _state, auth_request = await _posted_form(request, "login")
        username = form.get("username", "")[:150]
        password = form.get("password", "")[:1024]
        # The client and the user in one transaction; the user is used only if it is good.
        found, user, has_factors = await read_sign_in(ctx, auth_request.client_id, username)
        client = _still_registered(found, auth_request)
    except InvalidForm as exc:
        return error_page(f"{exc} Go back to the application and sign in again.")
    info = request_info(request, actor=client.client_id)
    if form.get("method") == "passkey":
        return mfa_signin.passkey_sign_in_page(
            request, mfa_signin.Continuation(auth_request), client
        )

    async def then(session: AsyncSession, browser: BrowserSession) -> Next | AuthorizationError:
        return await after_sign_in(session, ctx, auth_request, client, browser)

    try:
        if not username or not password:
            raise InvalidGrant("missing")
        if user is not None and user.must_change_password:
            # An admin reset this password: it opens no session, it lets the user choose one.
            await verify_login(
                ctx,
                user,
                username,
                password,
                info=info,
                client_id=client.client_id,
                password_reset_ok=True,
            )
            return _new_password_page(request, auth_request, client, user)
        outcome = await _after_password(
            request,
            ctx,
            auth_request,
            client,
            user,
            username,
            password,
            info,
            then,
            has_factors=has_factors,
        )
        if isinstance(outcome, Response):
            return outcome
        signed, step = outcome
    except TemporarilyUnavailable as exc:
        # The sign-in limits' Redis is down and the operator chose to refuse.
        paused = error_page(
            "Signing in is paused for a moment. Try again in a few seconds.",
            status_code=503,
            heading="Sign-in unavailable",
        )
        paused.headers.update(exc.headers())
        return paused
    except (InvalidGrant, RateLimited) as exc:
        message = "Invalid username or password."
        if isinstance(exc, RateLimited):
            wait = int(exc.retry_after or 60)
            message = f"Too many sign-in attempts. Try again in {wait} seconds."
        return await _continue(
            request, ctx, auth_request, client, None, status=303, message=message
        )
    response = await _answer(request, auth_request, client, signed.session, step, status=303)
    jar = cookie_jar(ctx)
    jar.set(response, jar.session_name, signed.cookie_secret)
    return response


@router.post("/consent")
async def consent(request: Request) -> Response:
    """The consent form: remember the answer, then continue the request."""
    ctx = get_context(request)
    try:
        form, state, auth_request = await _posted_form(request, "consent")
        async with ctx.db.transaction() as session:
            client = _still_registered(
                await client_store.get_client(session, auth_request.client_id), auth_request
            )
    except InvalidForm as exc:
        return error_page(f"{exc} Go back to the application and sign in again.")
    browser = await browser_session(request)
    if browser is None or browser.user_id != state.get("uid"):
        return await _continue(request, ctx, auth_request, client, browser, status=303)
    if form.get("decision") != "allow":
        denied = AuthorizationError("access_denied", "the user did not allow access")
        return RedirectResponse(
            error_redirect(ctx, auth_request.redirect_uri, auth_request.state, denied), 303
        )
    await grant_consent(
        ctx,
        browser.user_id,
        browser.username,
        client.client_id,
        auth_request.scopes,
        info=request_info(request, actor=browser.username),
    )
    return await _continue(
        request, ctx, auth_request, client, browser, status=303, just_consented=True
    )


def _new_password_page(
    request: Request,
    auth_request: AuthorizationRequest,
    client: ClientRow,
    user: UserRow,
    *,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    # The form is good for one change: it names the password it replaces by its date.
    return _form_page(
        request,
        "signin/new_password.html",
        auth_request,
        client,
        purpose="new-password",
        extra={"uid": user.id, "changed": user.password_changed_at},
        status_code=status_code,
        message=message,
        username=user.username,
        action="/login/new-password",
    )


@router.post("/login/new-password")
async def new_password(request: Request) -> Response:
    """The user whose password an admin reset chooses a new one, then is signed in with it."""
    ctx = get_context(request)
    try:
        form, state, auth_request = await _posted_form(request, "new-password")
        async with ctx.db.transaction() as session:
            found = await client_store.get_client(session, auth_request.client_id)
            user = await user_store.get_user_by_id(session, str(state.get("uid")))
        client = _still_registered(found, auth_request)
        if (
            user is None
            or not user.must_change_password
            or user.password_changed_at != state.get("changed")
        ):
            raise InvalidForm("this form was already used.")
    except InvalidForm as exc:
        return error_page(f"{exc} Go back to the application and sign in again.")
    password = form.get("new_password", "")[:1024]
    if not password or password != form.get("confirm_password", ""):
        return _new_password_page(
            request,
            auth_request,
            client,
            user,
            message="The passwords do not match.",
            status_code=400,
        )
    info = request_info(request, actor=user.username)
    try:
        await accounts.set_password(ctx, user.username, password, info=info, by_admin=False)
    except InvalidRequest as exc:
        return _new_password_page(
            request, auth_request, client, user, message=exc.description, status_code=400
        )

    async def then(session: AsyncSession, browser: BrowserSession) -> Next | AuthorizationError:
        return await after_sign_in(session, ctx, auth_request, client, browser)

    _, fresh_user, has_factors = await read_sign_in(ctx, client.client_id, user.username)
    try:
        # A new password is still one factor: a user with a second one gives it now.
        outcome = await _after_password(
            request,
            ctx,
            auth_request,
            client,
            fresh_user,
            user.username,
            password,
            info,
            then,
            has_factors=has_factors,
        )
        if isinstance(outcome, Response):
            return outcome
        signed, step = outcome
    except (InvalidGrant, RateLimited):
        return await _continue(request, ctx, auth_request, client, None, status=303)
    response = await _answer(request, auth_request, client, signed.session, step, status=303)
    jar = cookie_jar(ctx)
    jar.set(response, jar.session_name, signed.cookie_secret)
    return response
