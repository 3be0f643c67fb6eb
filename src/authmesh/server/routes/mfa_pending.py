"""The state a browser sign-in carries between its steps, and the check of it.

Between the steps nothing is stored: the state travels in a signed form field, bound
to this browser's CSRF cookie and younger than ``mfa_pending_ttl``.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from authmesh.server.context import ServerContext
from authmesh.server.oidc.authorization import AuthorizationRequest
from authmesh.server.routes.browser_forms import cookie_jar, posted_signed_form
from authmesh.server.routes.common import get_context
from authmesh.server.routes.signin_input import still_registered
from authmesh.server.secrets import hash_secret
from authmesh.server.web.errors import InvalidForm
from authmesh.store import clients as client_store
from authmesh.store.models import ClientRow

__all__ = [
    "ACCOUNT_CLIENT",
    "CODE_FORM",
    "DONE_FORM",
    "ENROL_FORM",
    "PASSKEY_FORM",
    "Continuation",
    "client_of",
    "pending_state",
    "posted_step",
]


#: The ``client_id`` of browser sign-ins made for the account's security pages.
ACCOUNT_CLIENT = "authmesh-account"
CODE_FORM = "mfa_code"
ENROL_FORM = "mfa_enrol"
DONE_FORM = "mfa_done"
PASSKEY_FORM = "passkey_login"


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
    jar = cookie_jar(get_context(request))
    return hash_secret("mfa-binding:" + (request.cookies.get(jar.csrf_name) or ""))[:32]


def pending_state(
    request: Request,
    cont: Continuation,
    *,
    user_id: str | None,
    username: str | None,
    amr: Sequence[str],
    step_up: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The signed state of a pending sign-in, bound to this browser and timed."""
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


async def posted_step(request: Request, purpose: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The posted form and its signed state, checked: CSRF, signature, purpose, this
    browser, and not older than ``mfa_pending_ttl``.

    Raises:
        InvalidForm: a forged, foreign, stale or cross-site form.
    """
    ctx = get_context(request)
    form, state = await posted_signed_form(request, purpose)
    bind = state.get("bind")
    if not isinstance(bind, str) or not hmac.compare_digest(bind, _binding(request)):
        raise InvalidForm("the form was not made for this browser")
    started = state.get("at")
    if not isinstance(started, int | float) or ctx.now() - started > ctx.settings.mfa_pending_ttl:
        raise InvalidForm("the sign-in took too long")
    return form.single, state


async def client_of(ctx: ServerContext, cont: Continuation) -> ClientRow | None:
    """The client the sign-in continues to, if still registered for it."""
    if cont.request is None:
        return None
    async with ctx.db.transaction() as session:
        found = await client_store.get_client(session, cont.request.client_id)
    return still_registered(found, cont.request)
