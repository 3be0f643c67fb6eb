"""The browser sign-in: ``/authorize`` (OIDC Core §3.1.2), the sign-in and consent forms.

Routes parse and render; the decisions live in :mod:`authmesh.server.oidc`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

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
    open_sign_in,
    read_sign_in,
)
from authmesh.server.oidc.consent import grant_consent
from authmesh.server.oidc.errors import AuthorizationError, UntrustedRedirect
from authmesh.server.oidc.flow import (
    Next,
    after_sign_in,
    error_redirect,
    start_authorization,
)
from authmesh.server.routes.browser_forms import browser_session, cookie_jar, error_page
from authmesh.server.routes.common import get_context, request_info
from authmesh.server.routes.mfa_pages import after_password, passkey_sign_in_page
from authmesh.server.routes.mfa_pending import Continuation
from authmesh.server.routes.signin_input import authorize_params, posted_form, still_registered
from authmesh.server.routes.signin_steps import (
    answer_step,
    continue_request,
    form_page,
    respond_to_step,
)
from authmesh.server.web.errors import InvalidForm
from authmesh.store import clients as client_store
from authmesh.store import users as user_store
from authmesh.store.models import ClientRow, UserRow

__all__ = ["router"]

router = APIRouter(tags=["sign-in"], include_in_schema=False)


@router.api_route("/authorize", methods=["GET", "POST"])
async def authorize(request: Request) -> Response:
    """The authorization endpoint: sign in (or reuse the SSO session), consent, code."""
    ctx = get_context(request)
    try:
        params = await authorize_params(request)
        cookie = request.cookies.get(cookie_jar(ctx).session_name)
        started = await start_authorization(ctx, params, cookie)
    except UntrustedRedirect as exc:
        return error_page(exc.description)
    except AuthorizationError as exc:
        # Only reached once the client and its redirect URI are known good.
        return RedirectResponse(
            error_redirect(ctx, params["redirect_uri"], params.get("state"), exc), 302
        )
    return await respond_to_step(
        request, started.request, started.client, started.browser, started.step, status=302
    )


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
    second_step = await after_password(
        request,
        verified.user,
        Continuation(auth_request),
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
        form, _state, auth_request = await posted_form(request, "login")
        username = form.get("username", "")[:150]
        password = form.get("password", "")[:1024]
        # The client and the user in one transaction; the user is used only if it is good.
        found, user, has_factors = await read_sign_in(ctx, auth_request.client_id, username)
        client = still_registered(found, auth_request)
    except InvalidForm as exc:
        return error_page(f"{exc} Go back to the application and sign in again.")
    info = request_info(request, actor=client.client_id)
    if form.get("method") == "passkey":
        return passkey_sign_in_page(request, Continuation(auth_request), client)

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
        return await continue_request(
            request, ctx, auth_request, client, None, status=303, message=message
        )
    response = await answer_step(request, auth_request, client, signed.session, step, status=303)
    jar = cookie_jar(ctx)
    jar.set(response, jar.session_name, signed.cookie_secret)
    return response


@router.post("/consent")
async def consent(request: Request) -> Response:
    """The consent form: remember the answer, then continue the request."""
    ctx = get_context(request)
    try:
        form, state, auth_request = await posted_form(request, "consent")
        async with ctx.db.transaction() as session:
            client = still_registered(
                await client_store.get_client(session, auth_request.client_id), auth_request
            )
    except InvalidForm as exc:
        return error_page(f"{exc} Go back to the application and sign in again.")
    browser = await browser_session(request)
    if browser is None or browser.user_id != state.get("uid"):
        return await continue_request(request, ctx, auth_request, client, browser, status=303)
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
    return await continue_request(
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
    return form_page(
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
        form, state, auth_request = await posted_form(request, "new-password")
        async with ctx.db.transaction() as session:
            found = await client_store.get_client(session, auth_request.client_id)
            user = await user_store.get_user_by_id(session, str(state.get("uid")))
        client = still_registered(found, auth_request)
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
        return await continue_request(request, ctx, auth_request, client, None, status=303)
    response = await answer_step(request, auth_request, client, signed.session, step, status=303)
    jar = cookie_jar(ctx)
    jar.set(response, jar.session_name, signed.cookie_secret)
    return response
