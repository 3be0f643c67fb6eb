"""Block, unblock, password change, logout and forced logout: all end access at once."""

from __future__ import annotations

from typing import Any

import pytest

from authmesh.store import users as user_store
from support.harness import ALICE, Api, claims_of

BAD_LOGIN = {"error": "invalid_grant", "error_description": "invalid username or password"}
BAD_REFRESH = {
    "error": "invalid_grant",
    "error_description": "the refresh token is invalid, expired or revoked",
}
NEW_PASSWORD = "a-much-better-secret-7"


def _assert_dead(api: Api, login: dict[str, Any]) -> None:
    """Neither token of this login works any more, online or on refresh."""
    info = api.userinfo(login["access_token"])
    assert info.status_code == 401
    assert info.json()["error"] == "invalid_token"
    assert info.headers["www-authenticate"] == (
        'Bearer realm="authmesh", error="invalid_token", '
        'error_description="the token has been revoked"'
    )
    assert api.introspect(login["access_token"]) == {"active": False}
    assert api.refresh(login["refresh_token"]).json() == BAD_REFRESH


def _assert_alive(api: Api, login: dict[str, Any]) -> None:
    assert api.userinfo(login["access_token"]).status_code == 200
    assert api.introspect(login["access_token"])["active"] is True


@pytest.fixture
def api(shared: Api) -> Api:
    """Each test acts on a user of its own (``user``), so one server per backend will do."""
    return shared


@pytest.fixture
def user(api: Api) -> tuple[str, str]:
    """A fresh user: name and password."""
    return api.new_user()


def test_block_ends_every_session_and_unblock_allows_login_again(
    api: Api, user: tuple[str, str]
) -> None:
    sessions = [api.login(*user), api.login(*user)]
    user_id = api.user_id(user[0])
    before = api.latest_cursor()

    blocked = api.admin("POST", f"/admin/users/{user[0]}/block")

    assert blocked.status_code == 200
    assert blocked.json()["blocked"] is True
    assert blocked.json()["username"] == user[0]
    for login in sessions:
        _assert_dead(api, login)
    assert api.password_grant(*user).json() == BAD_LOGIN
    sids = {claims_of(s["access_token"])["sid"] for s in sessions}
    assert sorted(api.events(before)) == sorted([("sub", user_id)] + [("sid", s) for s in sids])

    unblocked = api.admin("POST", f"/admin/users/{user[0]}/unblock")

    assert unblocked.status_code == 200
    assert unblocked.json()["blocked"] is False
    fresh = api.login(*user)
    _assert_alive(api, fresh)
    assert api.refresh(fresh["refresh_token"]).status_code == 200
    # The tokens from before the block stay revoked.
    for login in sessions:
        _assert_dead(api, login)


def test_blocked_user_cannot_refresh_even_a_token_from_before(
    api: Api, user: tuple[str, str]
) -> None:
    login = api.login(*user)
    api.admin("POST", f"/admin/users/{user[0]}/block")
    api.admin("POST", f"/admin/users/{user[0]}/unblock")

    assert api.refresh(login["refresh_token"]).json() == BAD_REFRESH


def test_password_change(api: Api, user: tuple[str, str]) -> None:
    current, other = api.login(*user), api.login(*user)

    response = api.http.post(
        "/account/password",
        json={"current_password": user[1], "new_password": NEW_PASSWORD},
        headers=api.bearer(current["access_token"]),
    )

    assert response.status_code == 204, response.text
    assert response.headers["cache-control"] == "no-store"
    _assert_dead(api, current)
    _assert_dead(api, other)
    assert api.password_grant(*user).json() == BAD_LOGIN
    fresh = api.login(user[0], NEW_PASSWORD)
    _assert_alive(api, fresh)


def test_password_change_with_wrong_current_password_is_403(
    api: Api, user: tuple[str, str]
) -> None:
    login = api.login(*user)

    response = api.http.post(
        "/account/password",
        json={"current_password": "not-the-password", "new_password": NEW_PASSWORD},
        headers=api.bearer(login["access_token"]),
    )

    assert response.status_code == 403
    assert response.json() == {
        "error": "access_denied",
        "error_description": "the current password is wrong",
    }
    _assert_alive(api, login)
    assert api.password_grant(*user).status_code == 200


@pytest.mark.parametrize(
    ("weak", "why"),
    [
        ("short", "the password must have at least 10 characters"),
        (" " * 12, "the password must not be only whitespace"),
        ("password123", "the password is too common; choose another"),
    ],
    ids=["too-short", "whitespace", "common"],
)
def test_password_change_to_a_weak_password_is_400(
    api: Api, user: tuple[str, str], weak: str, why: str
) -> None:
    login = api.login(*user)

    response = api.http.post(
        "/account/password",
        json={"current_password": user[1], "new_password": weak},
        headers=api.bearer(login["access_token"]),
    )

    assert response.status_code == 400, response.text
    assert response.json() == {"error": "invalid_request", "error_description": why}
    _assert_alive(api, login)
    assert api.password_grant(*user).status_code == 200


def test_password_change_needs_a_user_token(api: Api) -> None:
    service = api.service_token()["access_token"]
    body = {"current_password": ALICE[1], "new_password": NEW_PASSWORD}

    missing = api.http.post("/account/password", json=body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="authmesh"'
    as_service = api.http.post("/account/password", json=body, headers=api.bearer(service))
    assert as_service.status_code == 403
    assert as_service.json()["error"] == "insufficient_scope"
    malformed = api.http.post(
        "/account/password", json={"current_password": ALICE[1]}, headers=api.bearer(service)
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"] == "invalid_request"


def test_logout_ends_this_session_only(api: Api, user: tuple[str, str]) -> None:
    this, other = api.login(*user), api.login(*user)
    before = api.latest_cursor()

    response = api.http.post("/account/logout", headers=api.bearer(this["access_token"]))

    assert response.status_code == 204
    _assert_dead(api, this)
    _assert_alive(api, other)
    assert api.refresh(other["refresh_token"]).status_code == 200
    assert api.events(before) == [("sid", claims_of(this["access_token"])["sid"])]


def test_logout_all_ends_every_session(api: Api, user: tuple[str, str]) -> None:
    this, other = api.login(*user), api.login(*user)
    before = api.latest_cursor()

    response = api.http.post(
        "/account/logout", params={"all": "true"}, headers=api.bearer(this["access_token"])
    )

    assert response.status_code == 204
    _assert_dead(api, this)
    _assert_dead(api, other)
    kinds = sorted(kind for kind, _ in api.events(before))
    assert kinds == ["sid", "sid", "sub"]
    # Logging in again works at once.
    _assert_alive(api, api.login(*user))


def test_admin_force_logout(api: Api, user: tuple[str, str]) -> None:
    sessions = [api.login(*user), api.login(*user), api.login(*user)]

    response = api.admin("POST", f"/admin/users/{user[0]}/logout")

    assert response.status_code == 200
    assert response.json() == {"sessions_ended": 3}
    for login in sessions:
        _assert_dead(api, login)
    _assert_alive(api, api.login(*user))
    audit = api.admin(
        "GET", "/admin/audit", params={"action": "force_logout", "subject": user[0]}
    ).json()["events"]
    assert [(e["actor"], e["subject"]) for e in audit] == [("admin", user[0])]


def test_admin_password_reset(api: Api, user: tuple[str, str]) -> None:
    login = api.login(*user)

    response = api.admin(
        "POST", f"/admin/users/{user[0]}/password", json={"password": NEW_PASSWORD}
    )

    assert response.status_code == 204
    _assert_dead(api, login)
    assert api.password_grant(*user).json() == BAD_LOGIN
    assert api.password_grant(user[0], NEW_PASSWORD).status_code == 200


def test_admin_api_needs_an_admin(api: Api) -> None:
    alice = api.login()["access_token"]

    missing = api.http.get("/admin/users")
    assert missing.status_code == 401
    assert missing.json()["error"] == "invalid_token"
    garbage = api.http.get("/admin/users", headers=api.bearer("not.a.token"))
    assert garbage.status_code == 401
    assert garbage.headers["www-authenticate"].startswith(
        'Bearer realm="authmesh", error="invalid_token"'
    )
    user = api.http.get("/admin/users", headers=api.bearer(alice))
    assert user.status_code == 403
    assert user.json() == {
        "error": "insufficient_scope",
        "error_description": "the admin role is required",
    }
    assert user.headers["www-authenticate"].startswith(
        'Bearer realm="authmesh", error="insufficient_scope"'
    )
    service = api.http.get("/admin/users", headers=api.bearer(api.service_token()["access_token"]))
    assert service.status_code == 403


def test_removing_the_admin_role_revokes_the_admin_token(api: Api) -> None:
    second_admin = api.new_user("admin", "user")
    admin = api.login(*second_admin)["access_token"]
    assert api.http.get("/admin/users", headers=api.bearer(admin)).status_code == 200

    api.admin("PUT", f"/admin/users/{second_admin[0]}/roles", json={"roles": ["user"]})

    response = api.http.get("/admin/users", headers=api.bearer(admin))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_admin_role_is_checked_live(api: Api) -> None:
    second_admin = api.new_user("admin", "user")
    admin = api.login(*second_admin)["access_token"]

    async def strip_roles() -> None:
        # Behind the API's back: no revocation event, only the database changes.
        async with api.core.db.transaction() as session:
            row = await user_store.get_user(session, second_admin[0])
            assert row is not None
            await user_store.set_roles(session, row.id, ["user"])

    api.server.call(strip_roles())

    response = api.http.get("/admin/users", headers=api.bearer(admin))
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


def test_admin_user_management(fresh: Api) -> None:
    api = fresh
    created = api.admin(
        "POST",
        "/admin/users",
        json={"username": "Carol", "password": "carol-password-1", "roles": ["user", "ops"]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["username"] == "Carol"
    assert created.json()["roles"] == ["ops", "user"]
    assert created.json()["blocked"] is False
    assert "password" not in created.text

    duplicate = api.admin(
        "POST", "/admin/users", json={"username": "carol", "password": "carol-password-2"}
    )
    assert duplicate.status_code == 400
    assert duplicate.json()["error"] == "invalid_request"

    listed = api.admin("GET", "/admin/users").json()["users"]
    assert [u["username"] for u in listed] == ["admin", "alice", "Carol"]
    assert api.admin("GET", "/admin/users/CAROL").json()["id"] == created.json()["id"]
    assert api.login("carol", "carol-password-1")["scope"]

    missing = api.admin("GET", "/admin/users/nobody")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "error_description": "no user 'nobody'"}
    assert api.admin("POST", "/admin/users/nobody/block").status_code == 404
    bad_role = api.admin("PUT", "/admin/users/alice/roles", json={"roles": ["has space"]})
    assert bad_role.status_code == 400


def test_admin_client_management(fresh: Api) -> None:
    api = fresh
    created = api.admin(
        "POST",
        "/admin/clients",
        json={
            "client_id": "billing-svc",
            "scopes": ["catalog:read"],
            "audiences": ["catalog"],
            "roles": ["service"],
        },
    )
    assert created.status_code == 201, created.text
    secret = created.json()["client_secret"]
    assert created.json()["public"] is False

    listed = api.admin("GET", "/admin/clients").json()["clients"]
    assert [c["client_id"] for c in listed] == ["billing-svc", "orders-svc", "web"]
    assert "client_secret" not in str(listed) and "secret_hash" not in str(listed)

    grant = {
        "grant_type": "client_credentials",
        "client_id": "billing-svc",
        "client_secret": secret,
    }
    token = api.token(grant).json()["access_token"]
    assert api.introspect(token)["active"] is True

    removed = api.admin("DELETE", "/admin/clients/billing-svc")
    assert removed.status_code == 204
    # Its tokens die with it, even one minted in the same second.
    assert api.introspect(token) == {"active": False}
    assert api.token(grant).status_code == 401
    assert api.admin("DELETE", "/admin/clients/billing-svc").status_code == 404
    taken = api.admin("POST", "/admin/clients", json={"client_id": "web", "public": True})
    assert taken.status_code == 400
