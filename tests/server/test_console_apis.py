"""The admin and account API endpoints the consoles' service functions added: user search,
client update and secret rotation, signing keys, a password reset that must be changed,
and the user's own sessions."""

from __future__ import annotations

from support.harness import Api, basic


def test_users_are_searched_by_name_or_email(shared: Api) -> None:
    name, _ = shared.new_user()
    found = shared.admin("GET", "/admin/users", params={"q": name.upper()}).json()
    assert [u["username"] for u in found["users"]] == [name] and found["total"] == 1
    assert "total" not in shared.admin("GET", "/admin/users").json()


def test_a_client_is_updated_and_its_secret_rotated(shared: Api) -> None:
    client_id = f"c-{shared.new_user()[0]}"
    made = shared.admin(
        "POST", "/admin/clients", json={"client_id": client_id, "audiences": ["orders"]}
    )
    assert made.status_code == 201
    first = made.json()["client_secret"]
    changed = shared.admin(
        "PUT",
        f"/admin/clients/{client_id}",
        json={"grant_types": ["client_credentials"], "audiences": ["catalog"], "name": "C"},
    )
    assert changed.status_code == 200 and changed.json()["audiences"] == ["catalog"]
    bad = shared.admin(
        "PUT", f"/admin/clients/{client_id}", json={"grant_types": ["authorization_code"]}
    )
    assert bad.status_code == 400 and "redirect URI" in bad.json()["error_description"]
    rotated = shared.admin("POST", f"/admin/clients/{client_id}/secret")
    assert rotated.status_code == 200 and rotated.json()["client_secret"] != first
    form = {"grant_type": "client_credentials"}
    assert shared.token(form, headers={"Authorization": basic(client_id, first)}).status_code == 401
    new = basic(client_id, rotated.json()["client_secret"])
    assert shared.token(form, headers={"Authorization": new}).status_code == 200
    assert (
        shared.admin("PUT", "/admin/clients/nope", json={"grant_types": ["password"]}).status_code
        == 404
    )
    public = shared.admin("POST", "/admin/clients/web/secret")
    assert public.status_code == 400


def test_signing_keys_are_listed_and_rotated(shared: Api) -> None:
    before = shared.admin("GET", "/admin/keys").json()["keys"]
    assert before and all("d" not in k and "private_jwk" not in k for k in before)
    rotated = shared.admin("POST", "/admin/keys/rotate")
    assert rotated.status_code == 201
    after = shared.admin("GET", "/admin/keys").json()["keys"]
    assert after[0]["kid"] == rotated.json()["kid"] and len(after) == len(before) + 1


def test_an_api_password_reset_can_require_a_change(shared: Api) -> None:
    name, _ = shared.new_user()
    reset = shared.admin(
        "POST",
        f"/admin/users/{name}/password",
        json={"password": "tmp-pass-123", "must_change": True},
    )
    assert reset.status_code == 204
    assert shared.password_grant(name, "tmp-pass-123").status_code == 400


def test_own_sessions_are_listed_and_ended_never_anyone_elses(shared: Api) -> None:
    name, password = shared.new_user()
    first = shared.login(name, password)["access_token"]
    second = shared.login(name, password)["access_token"]
    listed = shared.http.get("/account/sessions", headers=shared.bearer(first)).json()["sessions"]
    assert len(listed) == 2 and sum(s["current"] for s in listed) == 1
    other = next(s["id"] for s in listed if not s["current"])
    intruder, intruder_pw = shared.new_user()
    theirs = shared.login(intruder, intruder_pw)["access_token"]
    refused = shared.http.delete(f"/account/sessions/{other}", headers=shared.bearer(theirs))
    assert refused.status_code == 404
    assert shared.introspect(second)["active"] is True
    ended = shared.http.delete(f"/account/sessions/{other}", headers=shared.bearer(first))
    assert ended.status_code == 204
    assert shared.introspect(second)["active"] is False
    assert shared.introspect(first)["active"] is True
    service = shared.service_token()["access_token"]
    assert shared.http.get("/account/sessions", headers=shared.bearer(service)).status_code == 403
