"""The pages of the second sign-in step: a code or a passkey after the password, a
passkey alone (passwordless), step-up for ``acr_values``, and enrolment when policy
demands a second factor. Decisions live in :mod:`authmesh.server.mfa`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from authmesh.server.mfa import factors, totp, verify
from authmesh.server.mfa.policy import mfa_required, wants_mfa
from authmesh.server.oidc.authorization import AuthorizationRequest
from authmesh.server.oidc.browser_sessions import BrowserSession
from authmesh.server.routes.browser_forms import signed_form_page
from authmesh.server.routes.common import get_context
from authmesh.server.routes.mfa_pending import (
    CODE_FORM,
    ENROL_FORM,
    PASSKEY_FORM,
    Continuation,
    pending_state,
)
from authmesh.store import users as user_store
from authmesh.store.models import ClientRow, UserRow

__all__ = [
    "after_password",
    "enrol_page",
    "passkey_sign_in_page",
    "passkeys_usable",
    "second_factor_page",
    "step_up_page",
    "with_own_script",
]


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


def _client_name(client: ClientRow | None) -> str | None:
    return (client.name or client.client_id) if client else None


async def second_factor_page(
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
    """The page asking for a code or a passkey after the password."""
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
    response = signed_form_page(
        request,
        "mfa/second_factor.html",
        purpose=CODE_FORM,
        state=pending_state(
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


def enrol_page(
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
    """The page setting up an authenticator app the sign-in demands."""
    ctx = get_context(request)
    offer = factors.start_totp(ctx, username)
    if secret is not None:  # a wrong code: the same secret again, the app has it
        uri = totp.provisioning_uri(secret, username=username, issuer_name=ctx.settings.realm)
        offer = factors.TotpEnrolment(secret, uri, totp.qr_svg(uri))
    return signed_form_page(
        request,
        "mfa/enrol_totp.html",
        purpose=ENROL_FORM,
        state=pending_state(
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
        return await second_factor_page(
            request, cont, client, user_id=user.id, username=user.username, amr=amr, step_up=sid
        )
    if asked or mfa_required(ctx.settings, state.roles):
        return enrol_page(
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
    response = signed_form_page(
        request,
        "mfa/passkey_signin.html",
        purpose=PASSKEY_FORM,
        state=pending_state(request, cont, user_id=None, username=None, amr=[], ch=challenge.hex()),
        answer_goes_to=cont.answer_goes_to,
        status_code=status_code,
        client_name=_client_name(client) or "your account",
        options=options,
        message=message,
        action="/login/passkey",
    )
    return with_own_script(response)
