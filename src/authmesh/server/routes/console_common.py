"""What every console page and form needs: the signed-in user, CSRF, the page itself.

A page or form without a console session sends the browser to sign in; a
non-admin gets a 403 page on every admin page and action; a form without this
browser's CSRF token gets a 403 page; a dangerous admin action with a sign-in
older than a few minutes sends the admin to type the password again.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from authmesh.server.console.sign_in import (
    ConsoleSignIn,
    current_console_user,
    is_fresh,
    safe_next,
)
from authmesh.server.context import RequestInfo
from authmesh.server.errors import InvalidRequest
from authmesh.server.routes.browser_forms import cookie_jar, form_signer
from authmesh.server.routes.common import Form, get_context, read_form, request_info
from authmesh.server.web.errors import InvalidForm
from authmesh.server.web.render import page

__all__ = [
    "AccountForm",
    "AdminForm",
    "AdminUser",
    "ConsoleStop",
    "SignedIn",
    "actor_info",
    "bounded_int",
    "console_page",
    "install_console_errors",
    "refused_page",
    "sign_in_redirect",
]


class ConsoleStop(Exception):
    """Stops a console route with a ready answer (sign in, 403, sign in again)."""

    def __init__(self, response: Response) -> None:
        super().__init__("console request stopped")
        self.response = response


def install_console_errors(app: FastAPI) -> None:
    """Answer :class:`ConsoleStop` with its response."""

    async def stopped(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsoleStop)
        return exc.response

    app.add_exception_handler(ConsoleStop, stopped)


def sign_in_redirect(request: Request, next_path: str, *, again: bool = False) -> Response:
    """To the consoles' sign-in, coming back to ``next_path``.

    On the issuer's own origin: the sign-in's cookies must be where its callback
    (a redirect URI under the issuer URL) lands, however the page was reached.
    """
    query = {"next": safe_next(next_path), **({"again": "1"} if again else {})}
    issuer = get_context(request).issuer.issuer.rstrip("/")
    return RedirectResponse(f"{issuer}/console/signin?{urlencode(query)}", 303)


def refused_page(request: Request, message: str, *, status_code: int = 403) -> Response:
    """A plain page saying why (never a redirect, never a traceback)."""
    return page(
        "console/refused.html",
        status_code=status_code,
        heading="Not allowed" if status_code == 403 else "Something went wrong",
        message=message,
    )


def _page_path(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


async def _signed_in(request: Request) -> ConsoleSignIn:
    ctx = get_context(request)
    user = await current_console_user(ctx, request.cookies.get(cookie_jar(ctx).console_name))
    if user is None:
        back = _page_path(request) if request.method == "GET" else _section(request.url.path)
        raise ConsoleStop(sign_in_redirect(request, back))
    return user


def _section(path: str) -> str:
    return "/admin" if path.startswith("/admin") else "/account"


async def _admin(request: Request) -> ConsoleSignIn:
    user = await _signed_in(request)
    if "admin" not in user.roles:
        raise ConsoleStop(refused_page(request, "The admin console needs the admin role."))
    return user


async def _checked_form(request: Request) -> Form:
    ctx = get_context(request)
    try:
        form = await read_form(request)
        form_signer(request).check_csrf(
            request.cookies.get(cookie_jar(ctx).csrf_name), form.get("csrf_token")
        )
    except (InvalidRequest, InvalidForm):
        raise ConsoleStop(
            refused_page(request, "The form was not sent from this site. Reload the page.")
        ) from None
    return form


async def _account_form(request: Request) -> tuple[ConsoleSignIn, Form]:
    user = await _signed_in(request)
    return user, await _checked_form(request)


async def _admin_form(request: Request) -> tuple[ConsoleSignIn, Form]:
    user = await _admin(request)
    form = await _checked_form(request)
    if not is_fresh(get_context(request), user):
        # The action is not done: the admin confirms who they are, then repeats it.
        raise ConsoleStop(sign_in_redirect(request, safe_next(form.get("back")), again=True))
    return user, form


SignedIn = Annotated[ConsoleSignIn, Depends(_signed_in)]
AdminUser = Annotated[ConsoleSignIn, Depends(_admin)]
AccountForm = Annotated[tuple[ConsoleSignIn, Form], Depends(_account_form)]
AdminForm = Annotated[tuple[ConsoleSignIn, Form], Depends(_admin_form)]


def bounded_int(value: str, default: int, low: int, high: int) -> int:
    """A whole number from a query parameter, ``default`` when it is not one or out of range."""
    if not value.isascii() or not value.isdigit() or len(value) > 20:
        return default
    number = int(value)
    return number if low <= number <= high else default


def actor_info(request: Request, user: ConsoleSignIn) -> RequestInfo:
    """Who acts, for the audit trail: the signed-in user, from this address."""
    return request_info(request, actor=user.username)


def console_page(
    request: Request,
    template: str,
    signed_in: ConsoleSignIn,
    *,
    status_code: int = 200,
    scripts: bool = False,
    **context: Any,
) -> Response:
    """A console page: its forms carry this browser's CSRF token (the cookie is set when
    the browser has none), and it knows who is signed in."""
    jar = cookie_jar(get_context(request))
    signer = form_signer(request)
    csrf_cookie = request.cookies.get(jar.csrf_name) or ""
    fresh = not csrf_cookie or len(csrf_cookie) > 100
    if fresh:
        csrf_cookie = signer.new_cookie_value()
    response = page(
        template,
        status_code=status_code,
        scripts=scripts,
        csrf_token=signer.csrf_token(csrf_cookie),
        me=signed_in,
        is_admin="admin" in signed_in.roles,
        here=request.url.path,
        **context,
    )
    if fresh:
        jar.set(response, jar.csrf_name, csrf_cookie)
    return response
