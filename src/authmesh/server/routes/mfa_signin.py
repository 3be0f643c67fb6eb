"""The second step of the browser sign-in: a code or a passkey after the password, a
passkey alone (passwordless), step-up for ``acr_values``, and enrolment when policy
demands a second factor.

Between the steps nothing is stored: the state travels in a signed form field, bound
to this browser's CSRF cookie and younger than ``mfa_pending_ttl``. Decisions live
in :mod:`authmesh.server.mfa`.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.server import audit
from authmesh.server.context import ServerContext
from authmesh.server.errors import InvalidGrant, InvalidRequest, RateLimited
from authmesh.server.mfa import factors, totp, verify
from authmesh.server.mfa.policy import amr_with, mfa_required, wants_mfa
from authmesh.server.oidc.authorization import AuthorizationRequest
from authmesh.server.oidc.browser_sessions import BrowserSession, open_sign_in
from authmesh.server.oidc.errors import AuthorizationError
from authmesh.server.oidc.flow import Next, after_sign_in
from authmesh.server.routes import signin
from authmesh.server.routes.common import get_context, read_form, request_info
from authmesh.server.secrets import hash_secret
from authmesh.server.web.errors import InvalidForm
from authmesh.store import clients as client_store
from authmesh.store import factors as factor_store
from authmesh.store import users as user_store
from authmesh.store.models import ClientRow, UserRow

__all__ = [
    "ACCOUNT_CLIENT",
    "Continuation",
    "after_password",
    "passkeys_usable",
    "router",
    "with_own_script",
]

router = APIRouter(tags=["sign-in"], include_in_schema=False)

#: The ``client_id`` of browser sign-ins made for the account's security pages.
ACCOUNT_CLIENT = "authmesh-account"
_CODE = "mfa_code"
_ENROL = "mfa_enrol"
_DONE = "mfa_done"
_PASSKEY = "passkey_login"


def passkeys_usable(request: Request) -> bool:
    """Whether the sign-in pages offer passkeys (not when the issuer is an IP address)."""
    return factors.relying_party(get_context(request)).usable


def with_own_script(response: Response) -> Response:
    """Let a page run this server's own script files (the passkey pages), nothing inline."""
    csp = response.headers["Content-Security-Policy"]
    response.headers["Content-Security-Policy"] = csp.replace(
        "default-src 'none';", "default-src 'none'; script-src 'self';", 1
    )
    return response


@dataclass(frozen=True, slots=True)
class Continuation:
    """Where a sign-in goes once every step passed: an authorization request, or a page
    of this server (the account's security settings)."""

    request: AuthorizationRequest | None
    next_path: str | None = None

    def to_json(self) -> dict[str, Any]:
        """For the signed form state."""
        return {"req": self.request.to_json() if self.request else None, "next": self.next_path}

    @classmethod
    def from_json(cls, data: Any) -> Continuation:
        """From signed form state.

        Raises:
            InvalidForm: incomplete.
        """
        try:
            req = data.get("req")
            next_path = data.get("next")
            request = AuthorizationRequest.from_json(req) if req else None
        except (AttributeError, KeyError, TypeError, ValueError):
            raise InvalidForm("the form is incomplete") from None
        if request is None and next_path not in _LOCAL_PAGES:
            raise InvalidForm("the form is incomplete")
        return cls(request, next_path)

    @property
    def answer_goes_to(self) -> str | None:
        """The origin a form of this sign-in may redirect to."""
        return self.request.redirect_uri if self.request else None


_LOCAL_PAGES = frozenset({"/account/security"})


def _binding(request: Request) -> str:
    """What ties a pending sign-in to this browser: a hash of its CSRF cookie."""
    jar = signin.cookie_jar(get_context(request))
    return hash_secret("mfa-binding:" + (request.cookies.get(jar.csrf_name) or ""))[:32]


def _client_name(client: ClientRow | None) -> str | None:
    return (client.name or client.client_id) if client else None


def _state(
    request: Request,
    cont: Continuation,
    *,
    user_id: str | None,
    username: str | None,
    amr: Sequence[str],
    step_up: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    ctx = get_context(request)
    return {
        "cont": cont.to_json(),
        "uid": user_id,
        "name": username,
        "amr": list(amr),
        "at": ctx.now(),
        "bind": _binding(request),
        "sid": step_up,
        **extra,
    }


async def _posted(request: Request, purpose: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The posted form and its signed state, checked: CSRF, signature, purpose, this
    browser, and not older than ``mfa_pending_ttl``.

    Raises:
        InvalidForm: a forged, foreign, stale or cross-site form.
    """
    ctx = get_context(request)
    try:
        form = await read_form(request)
    except InvalidRequest as exc:
        raise InvalidForm(exc.description) from None
    signer = signin.form_signer(request)
    signer.check_csrf(request.cookies.get(signin.cookie_jar(ctx).csrf_name), form.get("csrf_token"))
    state = signer.loads(purpose, form.get("request"))
    bind = state.get("bind")
    if not isinstance(bind, str) or not hmac.compare_digest(bind, _binding(request)):
        raise InvalidForm("the form was not made for this browser")
    started = state.get("at")
    if not isinstance(started, int | float) or ctx.now() - started > ctx.settings.mfa_pending_ttl:
        raise InvalidForm("the sign-in took too long")
    return form.single, state


async def _client_of(ctx: ServerContext, cont: Continuation) -> ClientRow | None:
    if cont.request is None:
        return None
    async with ctx.db.transaction() as session:
        found = await client_store.get_client(session, cont.request.client_id)
    return signin._still_registered(found, cont.request)


# --- pages --------------------------------------------------------------------


async def _second_factor_page(
    request: Request,
    cont: Continuation,
    client: ClientRow | None,
    *,
    user_id: str,
    username: str,
    amr: Sequence[str],
    step_up: str | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    ctx = get_context(request)
    state = await verify.second_factor_state(ctx, user_id, with_roles=False)
    options = None
    extra: dict[str, Any] = {}
    if state.passkeys:
        challenge = factors.new_passkey_challenge()
        options = factors.relying_party(ctx).authentication_options(
            challenge=challenge, allowed=state.passkeys
        )
        extra["ch"] = challenge.hex()
    response = signin.signed_form_page(
        request,
        "mfa/second_factor.html",
        purpose=_CODE,
        state=_state(
            request, cont, user_id=user_id, username=username, amr=amr, step_up=step_up, **extra
        ),
        answer_goes_to=cont.answer_goes_to,
        status_code=status_code,
        username=username,
        client_name=_client_name(client),
        options=options,
        message=message,
        action="/login/second-factor",
    )
    return with_own_script(response) if options else response


def _enrol_page(
    request: Request,
    cont: Continuation,
    *,
    user_id: str,
    username: str,
    amr: Sequence[str],
    step_up: str | None,
    secret: str | None = None,
    message: str | None = None,
) -> Response:
    ctx = get_context(request)
    offer = factors.start_totp(ctx, username)
    if secret is not None:  # a wrong code: the same secret again, the app has it
        uri = totp.provisioning_uri(secret, username=username, issuer_name=ctx.settings.realm)
        offer = factors.TotpEnrolment(secret, uri, totp.qr_svg(uri))
    return signin.signed_form_page(
        request,
        "mfa/enrol_totp.html",
        purpose=_ENROL,
        state=_state(
            request,
            cont,
            user_id=user_id,
            username=username,
            amr=amr,
            step_up=step_up,
            secret=offer.secret,
        ),
        answer_goes_to=cont.answer_goes_to,
        qr_svg=offer.qr_svg,
        secret_display=" ".join(offer.secret[i : i + 4] for i in range(0, len(offer.secret), 4)),
        required=True,
        named=False,
        message=message,
        action="/login/enrol",
    )


async def after_password(
    request: Request,
    user: UserRow,
    cont: Continuation,
    client: ClientRow | None,
    *,
    step_up: BrowserSession | None = None,
    has_factors: bool | None = None,
) -> Response | None:
    """The second step this user owes after the password (or for a step-up), or ``None``
    when the password is enough: a code/passkey page if they have a factor, enrolment
    if their roles or the request demand one.

    ``has_factors``: whether the user has a factor, when the caller read it with the
    user; ``None`` to read it here.
    """
    ctx = get_context(request)
    with_roles = bool(ctx.settings.mfa_required_roles)
    if has_factors is False and not with_roles:
        # Nothing left to read: no factor, and no policy that looks at roles.
        state = verify.SecondFactorState(has_totp=False, passkeys=[], roles=[])
    else:
        # The roles matter only when a policy names some: a sign-in without one costs
        # a single extra statement.
        state = await verify.second_factor_state(ctx, user.id, with_roles=with_roles)
    amr = list(step_up.amr) if step_up else ["pwd"]
    asked = cont.request is not None and wants_mfa(cont.request.acr_values, amr)
    sid = step_up.id if step_up else None
    if state.enabled:
        return await _second_factor_page(
            request, cont, client, user_id=user.id, username=user.username, amr=amr, step_up=sid
        )
    if asked or mfa_required(ctx.settings, state.roles):
        return _enrol_page(
            request, cont, user_id=user.id, username=user.username, amr=amr, step_up=sid
        )
    return None


async def step_up_page(
    request: Request,
    auth_request: AuthorizationRequest,
    client: ClientRow,
    browser: BrowserSession,
) -> Response:
    """``acr_values`` asks more of the live sign-in: its user gives a second factor."""
    ctx = get_context(request)
    async with ctx.db.transaction() as session:
        user = await user_store.get_user_by_id(session, browser.user_id)
    assert user is not None  # a live browser session's user exists
    page = await after_password(request, user, Continuation(auth_request), client, step_up=browser)
    assert page is not None  # wants_mfa held, so a factor or enrolment is owed
    return page


def passkey_sign_in_page(
    request: Request,
    cont: Continuation,
    client: ClientRow | None,
    *,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    """The passwordless sign-in: the browser offers this site's passkeys."""
    ctx = get_context(request)
    challenge = factors.new_passkey_challenge()
    options = factors.relying_party(ctx).authentication_options(challenge=challenge, allowed=[])
    response = signin.signed_form_page(
        request,
        "mfa/passkey_signin.html",
        purpose=_PASSKEY,
        state=_state(request, cont, user_id=None, username=None, amr=[], ch=challenge.hex()),
        answer_goes_to=cont.answer_goes_to,
        status_code=status_code,
        client_name=_client_name(client) or "your account",
        options=options,
        message=message,
        action="/login/passkey",
    )
    return with_own_script(response)


# --- finishing a sign-in -------------------------------------------------------


async def _finish(
    request: Request, state: dict[str, Any], amr: list[str], user: UserRow | None = None
) -> Response:
    """Every step passed: open the browser sign-in (or step the live one up) and continue."""
    ctx = get_context(request)
    try:
        cont = Continuation.from_json(state.get("cont"))
        client = await _client_of(ctx, cont)
    except InvalidForm as exc:
        return signin.error_page(f"{exc} Go back to the application and sign in again.")
    info = request_info(request, actor=client.client_id if client else ACCOUNT_CLIENT)
    now = ctx.now()
    step_up = state.get("sid")
    if step_up:
        browser = await signin.browser_session(request)
        if browser is None or browser.id != step_up:
            return signin.error_page("Your sign-in ended. Go back to the application.")
        async with ctx.db.transaction() as session:
            await factor_store.step_up_session(session, browser.id, amr=amr, now=now)
        browser = replace(browser, amr=tuple(amr), auth_time=now)
        if cont.request is None or client is None:
            return RedirectResponse(cont.next_path or "/account/security", 303)
        return await signin._continue(request, ctx, cont.request, client, browser, status=303)
    if user is None:
        async with ctx.db.transaction() as session:
            user = await user_store.get_user_by_id(session, str(state.get("uid")))
    if user is None or user.blocked:
        return signin.error_page("This account cannot sign in.")
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
        response = await signin._answer(
            request, auth_request, client, signed.session, step, status=303
        )
    jar = signin.cookie_jar(ctx)
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
    return signin.error_page(f"{exc} Go back to the application and sign in again.")


@router.post("/login/second-factor")
async def second_factor(request: Request) -> Response:
    """A code (TOTP or recovery) or a passkey assertion after the password."""
    ctx = get_context(request)
    try:
        form, state = await _posted(request, _CODE)
        cont = Continuation.from_json(state.get("cont"))
        client = await _client_of(ctx, cont)
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
        return await _second_factor_page(
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
        form, state = await _posted(request, _ENROL)
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
        return _enrol_page(
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
    return signin.signed_form_page(
        request,
        "mfa/recovery_codes.html",
        purpose=_DONE,
        state=done,
        answer_goes_to=cont.answer_goes_to,
        codes=codes,
        action="/login/continue",
    )


@router.post("/login/continue")
async def continue_after_enrolment(request: Request) -> Response:
    """The user saved their recovery codes: the sign-in goes on with its new factor."""
    try:
        _form, state = await _posted(request, _DONE)
    except InvalidForm as exc:
        return await _refused(request, exc, "continue")
    return await _finish(request, state, [str(a) for a in state.get("amr") or []])


@router.post("/login/passkey")
async def passkey_login(request: Request) -> Response:
    """A passwordless sign-in: the passkey names the user and proves two factors."""
    ctx = get_context(request)
    try:
        form, state = await _posted(request, _PASSKEY)
        cont = Continuation.from_json(state.get("cont"))
        client = await _client_of(ctx, cont)
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
