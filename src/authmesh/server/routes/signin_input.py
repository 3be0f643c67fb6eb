"""What the browser sends to the sign-in routes, read and checked: the parameters of
``/authorize`` and the signed forms that continue an authorization request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request

from authmesh.server.errors import InvalidRequest
from authmesh.server.oidc.authorization import AuthorizationRequest
from authmesh.server.oidc.errors import UntrustedRedirect
from authmesh.server.oidc.redirect_uris import redirect_uri_matches
from authmesh.server.routes.browser_forms import posted_signed_form
from authmesh.server.routes.common import read_form
from authmesh.server.web.errors import InvalidForm
from authmesh.store.models import ClientRow

__all__ = ["authorize_params", "posted_form", "still_registered"]


_MAX_QUERY = 8192


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


async def authorize_params(request: Request) -> dict[str, str]:
    """The parameters of ``/authorize``, from its query or its form body."""
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


async def posted_form(
    request: Request, purpose: str
) -> tuple[dict[str, str], dict[str, Any], AuthorizationRequest]:
    """The posted form, its signed state, and the request it continues.

    Raises:
        InvalidForm: a forged, foreign, stale or cross-site form.
    """
    form, state = await posted_signed_form(request, purpose)
    try:
        auth_request = AuthorizationRequest.from_json(state["req"])
    except (KeyError, TypeError, ValueError):
        raise InvalidForm("the form is incomplete") from None
    return form.single, state, auth_request


def still_registered(client: ClientRow | None, auth_request: AuthorizationRequest) -> ClientRow:
    """The client, unless it changed since the form was shown.

    Raises:
        InvalidForm: the client is gone or no longer has the redirect URI.
    """
    if client is None or not redirect_uri_matches(client.redirect_uris, auth_request.redirect_uri):
        raise InvalidForm("the application is no longer registered for this sign-in")
    return client
