"""The routes of the second sign-in step: a code or a passkey after the password,
enrolment when policy demands a second factor, a passkey alone (passwordless), and
the end of a sign-in once every step passed.

The state of a pending sign-in is in :mod:`authmesh.server.routes.mfa_pending`, its
pages in :mod:`authmesh.server.routes.mfa_pages`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.server import audit
from authmesh.server.errors import InvalidGrant, InvalidRequest, RateLimited
from authmesh.server.mfa import factors, verify
from authmesh.server.mfa.policy import amr_with
from authmesh.server.oidc.browser_sessions import BrowserSession, open_sign_in
from authmesh.server.oidc.errors import AuthorizationError
from authmesh.server.oidc.flow import Next, after_sign_in
from authmesh.server.routes.browser_forms import (
    browser_session,
    cookie_jar,
    error_page,
    signed_form_page,
)
from authmesh.server.routes.common import get_context, request_info
from authmesh.server.routes.mfa_pages import enrol_page, passkey_sign_in_page, second_factor_page
from authmesh.server.routes.mfa_pending import (
    ACCOUNT_CLIENT,
    CODE_FORM,
    DONE_FORM,
    ENROL_FORM,
    PASSKEY_FORM,
    Continuation,
    client_of,
    posted_step,
)
from authmesh.server.routes.signin_steps import answer_step, continue_request
from authmesh.server.web.errors import InvalidForm
from authmesh.store import factors as factor_store
from authmesh.store import users as user_store
from authmesh.store.models import UserRow

__all__ = ["router"]

router = APIRouter(tags=["sign-in"], include_in_schema=False)


async def _finish(
    request: Request, state: dict[str, Any], amr: list[str], user: UserRow | None = None
) -> Response:
    """Every step passed: open the browser sign-in (or step the live one up) and continue."""
    ctx = get_context(request)
    try:
        cont = Continuation.from_json(state.get("cont"))
        client = await client_of(ctx, cont)
    except InvalidForm as exc:
        return error_page(f"{exc} Go back to the application and sign in again.")
    info = request_info(request, actor=client.client_id if client else ACCOUNT_CLIENT)
    now = ctx.now()
    step_up = state.get("sid")
    if step_up:
        browser = await browser_session(request)
        if browser is None or browser.id != step_up:
            return error_page("Your sign-in ended. Go back to the application.")
        async with ctx.db.transaction() as session:
            await factor_store.step_up_session(session, browser.id, amr=amr, now=now)
        browser = replace(browser, amr=tuple(amr), auth_time=now)
        if cont.request is None or client is None:
            return RedirectResponse(cont.next_path or "/account/security", 303)
        return await continue_request(request, ctx, cont.request, client, browser, status=303)
    if user is None:
        async with ctx.db.transaction() as session:
            user = await user_store.get_user_by_id(session, str(state.get("uid")))
    if user is None or user.blocked:
        return error_page("This account cannot sign in.")
    auth_request = cont.request

    async def then(session: AsyncSession, browser: BrowserSession) -> Next | AuthorizationError:
        if auth_request is None or client is None:
            return Next("redirect", cont.next_path)
        return await after_sign_in(session, ctx, auth_request, client, browser)

    signed, step = await open_sign_in(
        ctx,
        user,
        amr=amr,
        client_id=client.client_id if client else ACCOUNT_CLIENT,
        info=info,
        then=then,
    )
    if auth_request is None or client is None:
        response: Response = RedirectResponse(cont.next_path or "/account/security", 303)
    else:
        response = await answer_step(
            request, auth_request, client, signed.session, step, status=303
        )
    jar = cookie_jar(ctx)
    jar.set(response, jar.session_name, signed.cookie_secret)
    return response


# --- routes ----------------------------------------------------------------------


async def _refused(request: Request, exc: InvalidForm, step: str) -> Response:
    """A forged, foreign, cross-site or stale second-step form: audited, then a plain page."""
    ctx = get_context(request)
    async with ctx.db.transaction() as session:
        await audit.record(
            ctx,
            session,
            "mfa_verify",
            outcome="failure",
            info=request_info(request),
            reason=f"form: {exc}"[:200],
            step=step,
        )
    return error_page(f"{exc} Go back to the application and sign in again.")


@router.post("/login/second-factor")
async def second_factor(request: Request) -> Response:
    """A code (TOTP or recovery) or a passkey assertion after the password."""
    ctx = get_context(request)
    try:
        form, state = await posted_step(request, CODE_FORM)
        cont = Continuation.from_json(state.get("cont"))
        client = await client_of(ctx, cont)
    except InvalidForm as exc:
        return await _refused(request, exc, "second_factor")
    user_id, username = str(state.get("uid")), str(state.get("name"))
    info = request_info(request, actor=client.client_id if client else ACCOUNT_CLIENT)
    client_id = client.client_id if client else None
    amr = [str(a) for a in state.get("amr") or []]
    try:
        credential = form.get("credential")
        if credential:
            passed = await verify.check_passkey(
                ctx,
                credential_json=credential,
                challenge_hex=str(state.get("ch") or ""),
                user_id=user_id,
                username=username,
                info=info,
                client_id=client_id,
            )
            methods = passed.methods
        else:
            methods = [
                await verify.check_code(
                    ctx, user_id, username, form.get("code", ""), info=info, client_id=client_id
                )
            ]
    except (InvalidGrant, RateLimited) as exc:
        message = verify.BAD_PASSKEY if form.get("credential") else verify.BAD_CODE
        status = 200
        if isinstance(exc, RateLimited):
            message = f"Too many attempts. Try again in {int(exc.retry_after or 60)} seconds."
            status = 429
        return await second_factor_page(
            request,
            cont,
            client,
            user_id=user_id,
            username=username,
            amr=amr,
            step_up=state.get("sid"),
            message=message,
            status_code=status,
        )
    return await _finish(request, state, amr_with(amr, *methods))


@router.post("/login/enrol")
async def enrol(request: Request) -> Response:
    """Policy or ``acr_values`` demanded a second factor the user did not have: they set
    up an authenticator app, then see their recovery codes, then go on."""
    ctx = get_context(request)
    try:
        form, state = await posted_step(request, ENROL_FORM)
        cont = Continuation.from_json(state.get("cont"))
    except InvalidForm as exc:
        return await _refused(request, exc, "enrol")
    user_id, username = str(state.get("uid")), str(state.get("name"))
    amr = [str(a) for a in state.get("amr") or []]
    info = request_info(request, actor=username)
    try:
        codes = await factors.confirm_totp(
            ctx,
            user_id,
            username,
            secret=str(state.get("secret")),
            code=form.get("code", ""),
            info=info,
        )
    except InvalidRequest as exc:
        return enrol_page(
            request,
            cont,
            user_id=user_id,
            username=username,
            amr=amr,
            step_up=state.get("sid"),
            secret=str(state.get("secret")),
            message=exc.description,
        )
    done = {**state, "amr": amr_with(amr, "otp"), "at": ctx.now()}
    done.pop("secret", None)
    return signed_form_page(
        request,
        "mfa/recovery_codes.html",
        purpose=DONE_FORM,
        state=done,
        answer_goes_to=cont.answer_goes_to,
        codes=codes,
        action="/login/continue",
    )


@router.post("/login/continue")
async def continue_after_enrolment(request: Request) -> Response:
    """The user saved their recovery codes: the sign-in goes on with its new factor."""
    try:
        _form, state = await posted_step(request, DONE_FORM)
    except InvalidForm as exc:
        return await _refused(request, exc, "continue")
    return await _finish(request, state, [str(a) for a in state.get("amr") or []])


@router.post("/login/passkey")
async def passkey_login(request: Request) -> Response:
    """A passwordless sign-in: the passkey names the user and proves two factors."""
    ctx = get_context(request)
    try:
        form, state = await posted_step(request, PASSKEY_FORM)
        cont = Continuation.from_json(state.get("cont"))
        client = await client_of(ctx, cont)
    except InvalidForm as exc:
        return await _refused(request, exc, "passkey")
    info = request_info(request, actor=client.client_id if client else ACCOUNT_CLIENT)
    try:
        passed = await verify.check_passkey(
            ctx,
            credential_json=form.get("credential", ""),
            challenge_hex=str(state.get("ch") or ""),
            user_id=None,
            username=None,
            info=info,
            client_id=client.client_id if client else None,
        )
    except (InvalidGrant, RateLimited) as exc:
        message = verify.BAD_PASSKEY
        if isinstance(exc, RateLimited):
            message = f"Too many attempts. Try again in {int(exc.retry_after or 60)} seconds."
        return passkey_sign_in_page(
            request,
            cont,
            client,
            message=message,
            status_code=429 if isinstance(exc, RateLimited) else 200,
        )
    return await _finish(request, state, amr_with([], *passed.methods), user=passed.user)
