"""``/admin``: the admin console's users and clients pages (role ``admin``).

Routes parse and render; every action is the service function the admin API
calls (:mod:`authmesh.server.accounts`, :mod:`authmesh.server.clients`), with the
signed-in admin as the audit trail's actor.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from authmesh.server import accounts, clients
from authmesh.server import audit as audit_trail
from authmesh.server.client_auth import GRANT_TYPES
from authmesh.server.console.sign_in import ConsoleSignIn
from authmesh.server.errors import NotFound, OAuthError
from authmesh.server.routes.common import Form, get_context
from authmesh.server.routes.console_common import (
    AdminForm,
    AdminUser,
    actor_info,
    bounded_int,
    console_page,
    refused_page,
)

__all__ = ["router"]

router = APIRouter(tags=["consoles"], include_in_schema=False)

_PAGE_SIZE = 20
_LIST_SEPARATORS = re.compile(r"[\s,]+")
_DONE = {
    "created": "The user was created.",
    "roles": "The roles were saved.",
    "blocked": "The user is blocked; every token of theirs is revoked.",
    "unblocked": "The user may sign in again.",
    "logged_out": "Every session of the user has ended.",
    "unlocked": "The sign-in lock is lifted.",
    "password": "The password was reset; the user must change it at the next sign-in.",
    "client_saved": "The client was saved.",
    "client_deleted": "The client was deleted.",
}


def _words(value: str | None) -> list[str]:
    """A list typed into one field, split on spaces, commas and new lines."""
    return [w for w in _LIST_SEPARATORS.split(value or "") if w]


def _done(request: Request) -> str | None:
    return _DONE.get(request.query_params.get("done", ""))


def _user_page(username: str, done: str) -> Response:
    return RedirectResponse(f"/admin/console/users/{quote(username, safe='')}?done={done}", 303)


@router.get("/admin")
async def admin_home(_admin: AdminUser) -> Response:
    """The console opens on its users page."""
    return RedirectResponse("/admin/console/users", 303)


# --- users ------------------------------------------------------------------


async def _users_page(
    request: Request,
    admin: ConsoleSignIn,
    *,
    q: str = "",
    page: int = 1,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    found, total = await accounts.search_users(
        get_context(request), q, offset=(page - 1) * _PAGE_SIZE, limit=_PAGE_SIZE
    )
    return console_page(
        request,
        "console/admin/users.html",
        admin,
        status_code=status_code,
        users=found,
        total=total,
        q=q,
        page=page,
        pages=max(1, -(-total // _PAGE_SIZE)),
        done=_done(request),
        error=error,
    )


@router.get("/admin/console/users")
async def users(
    request: Request,
    admin: AdminUser,
    q: str = "",
    page: str = "1",
) -> Response:
    """Users, searched by name or email, a page at a time (bad values read as defaults:
    a browser gets a page, not a validation error)."""
    return await _users_page(request, admin, q=q[:150], page=bounded_int(page, 1, 1, 100_000))


@router.post("/admin/console/users")
async def create_user(request: Request, posted: AdminForm) -> Response:
    """Create a user."""
    admin, form = posted
    try:
        made = await accounts.create_user(
            get_context(request),
            username=form.get("username") or "",
            password=form.get("password") or "",
            roles=_words(form.get("roles")),
            email=form.get("email"),
            info=actor_info(request, admin),
        )
    except OAuthError as exc:
        return await _users_page(request, admin, error=exc.description, status_code=400)
    return _user_page(made.username, "created")


async def _user_detail(
    request: Request,
    admin: ConsoleSignIn,
    username: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    ctx = get_context(request)
    try:
        user = await accounts.get_user(ctx, username)
    except NotFound:
        return refused_page(request, "There is no such user.", status_code=404)
    events = await audit_trail.query(ctx, audit_trail.AuditQuery(subject=user.username, limit=15))
    return console_page(
        request,
        "console/admin/user.html",
        admin,
        status_code=status_code,
        user=user,
        events=events,
        done=_done(request),
        error=error,
    )


@router.get("/admin/console/users/{username}")
async def user_detail(request: Request, username: str, admin: AdminUser) -> Response:
    """One user, and what an admin can do to them."""
    return await _user_detail(request, admin, username)


_USER_ACTIONS = {
    "roles": "roles",
    "block": "blocked",
    "unblock": "unblocked",
    "logout": "logged_out",
    "unlock": "unlocked",
    "password": "password",
}


async def _do_user_action(
    request: Request, admin: ConsoleSignIn, username: str, action: str, form: Form
) -> None:
    ctx = get_context(request)
    info = actor_info(request, admin)
    if action == "roles":
        await accounts.set_roles(ctx, username, _words(form.get("roles")), info=info)
    elif action == "block":
        await accounts.block_user(ctx, username, info=info)
    elif action == "unblock":
        await accounts.unblock_user(ctx, username, info=info)
    elif action == "logout":
        await accounts.logout_all(ctx, username, info=info, forced=True)
    elif action == "unlock":
        await accounts.unlock_user(ctx, username, info=info)
    else:
        # The user chooses a new password at the next sign-in.
        await accounts.set_password(
            ctx, username, form.get("password") or "", info=info, must_change=True
        )


@router.post("/admin/console/users/{username}/{action}")
async def user_action(request: Request, username: str, action: str, posted: AdminForm) -> Response:
    """Roles, block, unblock, force logout, unlock, or a password reset."""
    admin, form = posted
    if action not in _USER_ACTIONS:
        return refused_page(request, "There is no such action.", status_code=404)
    try:
        await _do_user_action(request, admin, username, action, form)
    except NotFound:
        return refused_page(request, "There is no such user.", status_code=404)
    except OAuthError as exc:
        return await _user_detail(request, admin, username, error=exc.description, status_code=400)
    return _user_page(username, _USER_ACTIONS[action])


# --- clients ----------------------------------------------------------------


def _client_settings(form: Form) -> dict[str, object]:
    return {
        "name": form.get("name") or "",
        "grant_types": [g for g in GRANT_TYPES if form.get(f"grant_{g}") == "on"],
        "scopes": _words(form.get("scopes")),
        "audiences": _words(form.get("audiences")),
        "redirect_uris": _words(form.get("redirect_uris")),
        "post_logout_redirect_uris": _words(form.get("post_logout_redirect_uris")),
        "first_party": form.get("third_party") != "on",
        "serves": _words(form.get("serves")),
    }


async def _clients_page(
    request: Request, admin: ConsoleSignIn, *, error: str | None = None, status_code: int = 200
) -> Response:
    return console_page(
        request,
        "console/admin/clients.html",
        admin,
        status_code=status_code,
        clients=await clients.list_clients(get_context(request)),
        grant_types=sorted(GRANT_TYPES),
        done=_done(request),
        error=error,
    )


@router.get("/admin/console/clients")
async def client_list(request: Request, admin: AdminUser) -> Response:
    """Every client, and the form to register one."""
    return await _clients_page(request, admin)


@router.post("/admin/console/clients")
async def create_client(request: Request, posted: AdminForm) -> Response:
    """Register a client; a confidential one's secret is on the answer page only."""
    admin, form = posted
    try:
        made = await clients.register_client(
            get_context(request),
            client_id=form.get("client_id") or "",
            public=form.get("public") == "on",
            info=actor_info(request, admin),
            **_client_settings(form),  # type: ignore[arg-type]
        )
    except OAuthError as exc:
        return await _clients_page(request, admin, error=exc.description, status_code=400)
    return console_page(
        request,
        "console/admin/client_secret.html",
        admin,
        client=made.client,
        secret=made.secret,
        created=True,
    )


async def _client_detail(
    request: Request,
    admin: ConsoleSignIn,
    client_id: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    try:
        client = await clients.get_client(get_context(request), client_id)
    except NotFound:
        return refused_page(request, "There is no such client.", status_code=404)
    return console_page(
        request,
        "console/admin/client.html",
        admin,
        status_code=status_code,
        client=client,
        grant_types=sorted(GRANT_TYPES),
        done=_done(request),
        error=error,
    )


@router.get("/admin/console/clients/{client_id}")
async def client_detail(request: Request, client_id: str, admin: AdminUser) -> Response:
    """One client: edit it, rotate its secret, delete it."""
    return await _client_detail(request, admin, client_id)


@router.post("/admin/console/clients/{client_id}/{action}")
async def client_action(
    request: Request, client_id: str, action: str, posted: AdminForm
) -> Response:
    """Save the settings, rotate the secret, or delete the client."""
    admin, form = posted
    ctx = get_context(request)
    info = actor_info(request, admin)
    try:
        if action == "edit":
            await clients.update_client(ctx, client_id, info=info, **_client_settings(form))  # type: ignore[arg-type]
        elif action == "rotate":
            secret = await clients.rotate_secret(ctx, client_id, info=info)
            return console_page(
                request,
                "console/admin/client_secret.html",
                admin,
                client=await clients.get_client(ctx, client_id),
                secret=secret,
                created=False,
            )
        elif action == "delete":
            if not await clients.remove_client(ctx, client_id, info=info):
                raise NotFound("no such client")
            return RedirectResponse("/admin/console/clients?done=client_deleted", 303)
        else:
            return refused_page(request, "There is no such action.", status_code=404)
    except NotFound:
        return refused_page(request, "There is no such client.", status_code=404)
    except OAuthError as exc:
        return await _client_detail(
            request, admin, client_id, error=exc.description, status_code=400
        )
    return RedirectResponse(
        f"/admin/console/clients/{quote(client_id, safe='')}?done=client_saved", 303
    )
