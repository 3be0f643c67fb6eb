"""What the authorization endpoint does next: sign in, ask consent, or answer with a code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.acr import MFA, acr_for_amr
from authmesh.server.context import ServerContext
from authmesh.server.mfa.policy import mfa_required, wants_mfa
from authmesh.server.oidc.authorization import (
    AuthorizationRequest,
    requested_client_id,
    validate_authorization_request,
)
from authmesh.server.oidc.browser_sessions import (
    BrowserSession,
    find_client_and_browser_session,
)
from authmesh.server.oidc.codes import issue_code
from authmesh.server.oidc.consent import needs_consent
from authmesh.server.oidc.errors import AuthorizationError
from authmesh.store import users as user_store
from authmesh.store.models import ClientRow
from authmesh.store.rows import Statements

__all__ = [
    "Next",
    "Started",
    "after_sign_in",
    "client_redirect",
    "error_redirect",
    "next_step",
    "start_authorization",
]


@dataclass(frozen=True, slots=True)
class Next:
    """The next step: show the sign-in or consent page, ask the signed-in user for a
    second factor (``step_up``), or redirect to the client."""

    action: Literal["login", "consent", "redirect", "step_up"]
    location: str | None = None


def client_redirect(redirect_uri: str, params: dict[str, str | None]) -> str:
    """``redirect_uri`` with the response parameters added to its query (RFC 6749 §4.1.2)."""
    parts = urlsplit(redirect_uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def error_redirect(
    ctx: ServerContext, redirect_uri: str, state: str | None, error: AuthorizationError
) -> str:
    """The client's redirect URI carrying an error (RFC 6749 §4.1.2.1, RFC 9207 ``iss``)."""
    return client_redirect(
        redirect_uri,
        {
            "error": error.error,
            "error_description": error.description,
            "state": state,
            "iss": ctx.issuer.issuer,
        },
    )


@dataclass(frozen=True, slots=True)
class Started:
    """A validated authorization request, the SSO session it arrived with, and what next."""

    request: AuthorizationRequest
    client: ClientRow
    browser: BrowserSession | None
    step: Next


async def start_authorization(
    ctx: ServerContext, params: Mapping[str, str], cookie: str | None
) -> Started:
    """Validate a request at the authorization endpoint, find the browser's sign-in and
    decide the next step, in at most two statements (the client with the sign-in; the
    code), each committed on its own: the code is the one write, and a transaction
    around the read would hold nothing still (the exchange checks the sign-in again).
    A third (the roles) runs only for a password-only sign-in while
    ``mfa_required_roles`` names some.

    Raises:
        UntrustedRedirect: no known client, or a redirect URI it did not register.
        AuthorizationError: anything else, to be sent to the redirect URI,
            including ``prompt=none`` when the user would have to act.
    """
    client_id = requested_client_id(params)
    async with ctx.db.core(transaction=False) as session:
        # One read of the client and the SSO session; the client is checked before
        # the sign-in is looked at.
        client, browser = await find_client_and_browser_session(session, ctx, client_id, cookie)
        request = validate_authorization_request(params, client)
        assert client is not None  # validation refuses an unknown client
        step = await _decide(session, ctx, request, client, browser)
    return Started(request, client, browser, step)


async def next_step(
    ctx: ServerContext,
    request: AuthorizationRequest,
    client: ClientRow,
    browser: BrowserSession | None,
    *,
    just_consented: bool = False,
) -> Next:
    """Decide the next step of an authorization request.

    Raises:
        AuthorizationError: ``prompt=none`` and the user would have to act
            (``login_required``, ``consent_required``).
    """
    async with ctx.db.core(transaction=False) as session:  # as start_authorization
        return await _decide(
            session,
            ctx,
            request,
            client,
            browser,
            just_consented=just_consented,
        )


async def after_sign_in(
    session: AsyncSession,
    ctx: ServerContext,
    request: AuthorizationRequest,
    client: ClientRow,
    browser: BrowserSession,
) -> Next | AuthorizationError:
    """The next step once the user has just signed in, in the sign-in's own transaction.

    An :class:`AuthorizationError` is returned, not raised: the sign-in stands
    (and commits) whatever the request's answer is.
    """
    try:
        return await _decide(session, ctx, request, client, browser, just_signed_in=True)
    except AuthorizationError as exc:
        return exc


async def _decide(
    session: Statements,
    ctx: ServerContext,
    request: AuthorizationRequest,
    client: ClientRow,
    browser: BrowserSession | None,
    *,
    just_signed_in: bool = False,
    just_consented: bool = False,
) -> Next:
    silent = "none" in request.prompt
    if browser is None or (not just_signed_in and _must_sign_in(ctx, request, browser)):
        if silent:
            raise AuthorizationError("login_required", "the user must sign in")
        return Next("login")
    if not just_signed_in and (
        wants_mfa(request.acr_values, browser.amr) or await _policy_owes_mfa(session, ctx, browser)
    ):
        # acr_values or the user's roles ask for more than this sign-in reached: a
        # second factor now (or enrolment, for a user without one).
        if silent:
            raise AuthorizationError("interaction_required", "the user must sign in again")
        return Next("step_up")
    if not just_consented and await needs_consent(
        session, client, browser.user_id, request.scopes, forced="consent" in request.prompt
    ):
        if silent:
            raise AuthorizationError("consent_required", "the user must consent")
        return Next("consent")
    code = await issue_code(session, ctx, request, client, browser)
    location = client_redirect(
        request.redirect_uri, {"code": code, "state": request.state, "iss": ctx.issuer.issuer}
    )
    return Next("redirect", location)


async def _policy_owes_mfa(
    session: Statements, ctx: ServerContext, browser: BrowserSession
) -> bool:
    """Whether the user's roles require a second factor this sign-in did not give: a role
    granted after it, or a policy changed since. Costs a statement only then."""
    if not ctx.settings.mfa_required_roles or acr_for_amr(browser.amr) == MFA:
        return False
    return mfa_required(ctx.settings, await user_store.get_roles(session, browser.user_id))


def _must_sign_in(
    ctx: ServerContext, request: AuthorizationRequest, browser: BrowserSession
) -> bool:
    if "login" in request.prompt or "select_account" in request.prompt:
        return True
    if request.max_age is not None and ctx.now() - browser.auth_time > request.max_age:
        return True
    return False
