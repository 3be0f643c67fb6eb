"""Multi-factor sign-in over HTTP: TOTP enrolment and sign-in, recovery codes, amr/acr,
step-up with acr_values, policy-forced enrolment, removal and the admin reset."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from authmesh.server.mfa.admin import mfa_enabled_users
from authmesh.store import factors as factor_store
from support.databases import db_target
from support.harness import Api, claims_of, launch
from support.mfa import MfaBrowser, ShiftedClock, code_at, recovery_codes_of, secret_of, text_of
from support.oidc_flow import SPA, redirect_query, register_browser_clients

_PARAMS = [
    pytest.param(b, id=b, marks=[pytest.mark.postgres] if b == "postgres" else [])
    for b in ("sqlite", "postgres")
]


@pytest.fixture(scope="module")
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture(scope="module", params=_PARAMS)
def mfa_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, clock: ShiftedClock
) -> Iterator[Api]:
    with db_target(request.param, tmp_path_factory.mktemp("mfa")) as target:
        api = launch(target, clock=clock, mfa_required_roles=["ops"])
        register_browser_clients(api)
        try:
            yield api
        finally:
            api.close()
            api.server.stop()


@pytest.fixture
def browser(mfa_api: Api) -> Iterator[MfaBrowser]:
    b = MfaBrowser(mfa_api)
    yield b
    b.close()


def _audit(api: Api, action: str, subject: str) -> list[dict[str, Any]]:
    response = api.admin("GET", "/admin/audit", params={"action": action})
    assert response.status_code == 200, response.text
    return [e for e in response.json()["events"] if e["subject"] == subject]


def _enrolled(api: Api, clock: ShiftedClock) -> tuple[str, str, str, list[str]]:
    """A new user with an authenticator app; name, password, secret, recovery codes.

    The clock then moves past the step of the code used to enrol."""
    name, password = api.new_user()
    b = MfaBrowser(api)
    try:
        assert b.account_sign_in(name, password).status_code == 303
        secret, codes = b.enrol_totp(clock)
    finally:
        b.close()
    clock.advance(30)
    return name, password, secret, codes


def test_enrolment_shows_a_qr_code_and_ten_recovery_codes_once(
    mfa_api: Api, browser: MfaBrowser, clock: ShiftedClock
) -> None:
    name, password = mfa_api.new_user()
    assert browser.account_sign_in(name, password).status_code == 303
    page = browser.http.get("/account/security/totp")
    assert "<svg" in page.text and 'role="img"' in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    secret = secret_of(page)
    done = browser.http.post(
        "/account/security/totp",
        data={**browser.hidden(page), "code": code_at(secret, clock())},
    )
    codes = recovery_codes_of(done)
    assert len(codes) == 10 and len(set(codes)) == 10
    security = browser.security_page().text
    assert "10 unused recovery codes left" in security
    assert not any(code in security for code in codes)
    assert _audit(mfa_api, "mfa_enrol", name)[0]["details"]["kind"] == "totp"


def test_wrong_enrolment_code_keeps_the_secret_and_enrols_nothing(
    mfa_api: Api, browser: MfaBrowser
) -> None:
    name, password = mfa_api.new_user()
    browser.account_sign_in(name, password)
    page = browser.http.get("/account/security/totp")
    again = browser.http.post(
        "/account/security/totp", data={**browser.hidden(page), "code": "000000"}
    )
    assert again.status_code == 200 and secret_of(again) == secret_of(page)
    assert "does not match" in again.text
    assert browser.factor_ids() == []


def test_sign_in_asks_the_code_after_the_password_and_tokens_say_mfa(
    mfa_api: Api, clock: ShiftedClock
) -> None:
    name, password, secret, _ = _enrolled(mfa_api, clock)
    b = MfaBrowser(mfa_api)
    try:
        second = b.submit_login(b.authorize(), name, password)
        assert second.status_code == 200 and 'action="/login/second-factor"' in second.text
        assert not b.has_session_cookie()  # the password alone opened nothing
        done = b.submit_code(second, code_at(secret, clock()))
        assert done.status_code == 303 and done.headers["location"].startswith(SPA)
        tokens = b.exchange(redirect_query(done)["code"]).json()
    finally:
        b.close()
    id_claims = claims_of(tokens["id_token"])
    assert id_claims["acr"] == "mfa"
    assert {"pwd", "otp", "mfa"} <= set(id_claims["amr"])
    access = claims_of(tokens["access_token"])
    assert access["acr"] == "mfa" and "otp" in access["amr"]
    assert _audit(mfa_api, "mfa_verify", name)[0]["details"]["method"] == "totp"
    refreshed = mfa_api.refresh(tokens["refresh_token"], client_id="spa").json()
    assert claims_of(refreshed["access_token"])["acr"] == "mfa"


def test_a_totp_code_works_once(mfa_api: Api, clock: ShiftedClock) -> None:
    name, password, secret, _ = _enrolled(mfa_api, clock)
    code = code_at(secret, clock())
    first, second = MfaBrowser(mfa_api), MfaBrowser(mfa_api)
    try:
        ok = first.submit_code(first.submit_login(first.authorize(), name, password), code)
        assert ok.status_code == 303
        replay = second.submit_code(second.submit_login(second.authorize(), name, password), code)
        assert replay.status_code == 200 and "That code did not work" in text_of(replay)
        assert not second.has_session_cookie()
    finally:
        first.close()
        second.close()
    failure = _audit(mfa_api, "mfa_verify", name)[0]
    assert failure["outcome"] == "failure" and failure["details"]["reason"] == "replayed_code"


def test_a_recovery_code_signs_in_once(mfa_api: Api, clock: ShiftedClock) -> None:
    name, password, _, codes = _enrolled(mfa_api, clock)
    b = MfaBrowser(mfa_api)
    try:
        done = b.submit_code(b.submit_login(b.authorize(), name, password), codes[3].upper())
        assert done.status_code == 303
        tokens = b.exchange(redirect_query(done)["code"]).json()
        assert claims_of(tokens["id_token"])["acr"] == "mfa"
    finally:
        b.close()
    again = MfaBrowser(mfa_api)
    try:
        page = again.submit_code(again.submit_login(again.authorize(), name, password), codes[3])
        assert page.status_code == 200 and "That code did not work" in text_of(page)
    finally:
        again.close()
    events = _audit(mfa_api, "mfa_verify", name)
    assert events[0]["outcome"] == "failure"
    assert events[1]["details"] == {"method": "recovery_code", "recovery_codes_left": 9}


def test_the_password_grant_cannot_skip_the_second_factor(
    mfa_api: Api, clock: ShiftedClock
) -> None:
    name, password, _, _ = _enrolled(mfa_api, clock)
    response = mfa_api.password_grant(name, password)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert _audit(mfa_api, "login", name)[0]["details"]["reason"] == "second_factor_required"
    ops, ops_password = mfa_api.new_user("ops")
    assert mfa_api.password_grant(ops, ops_password).status_code == 400


def test_acr_values_step_up_a_password_sign_in(mfa_api: Api, clock: ShiftedClock) -> None:
    name, password = mfa_api.new_user()
    b = MfaBrowser(mfa_api)
    try:
        first = b.tokens(name, password)
        assert claims_of(first["id_token"])["acr"] == "pwd"
        assert b.account_sign_in(name, password).status_code == 303
        secret, _ = b.enrol_totp(clock)
        clock.advance(30)
        # The SSO session is still password-only: acr_values=mfa asks for the code,
        # not for the password again.
        page = b.authorize(acr_values="mfa")
        assert page.status_code == 200 and 'action="/login/second-factor"' in page.text
        assert 'name="password"' not in page.text
        done = b.submit_code(page, code_at(secret, clock()))
        assert done.status_code == 303
        tokens = b.exchange(redirect_query(done)["code"]).json()
        assert claims_of(tokens["access_token"])["acr"] == "mfa"
        # Now the SSO answers at once, and prompt=none can be used.
        silent = b.authorize(acr_values="mfa", prompt="none")
        assert silent.status_code == 302 and "code" in redirect_query(silent)
    finally:
        b.close()


def test_acr_values_with_prompt_none_cannot_step_up_silently(mfa_api: Api) -> None:
    name, password = mfa_api.new_user()
    b = MfaBrowser(mfa_api)
    try:
        b.tokens(name, password)
        silent = b.authorize(acr_values="mfa", prompt="none")
        assert redirect_query(silent)["error"] == "interaction_required"
    finally:
        b.close()


def test_max_age_forces_the_password_and_the_code_again(mfa_api: Api, clock: ShiftedClock) -> None:
    name, password, secret, _ = _enrolled(mfa_api, clock)
    b = MfaBrowser(mfa_api)
    try:
        b.submit_code(b.submit_login(b.authorize(), name, password), code_at(secret, clock()))
        clock.advance(31)
        login = b.authorize(max_age="10")
        assert 'action="/login"' in login.text
        second = b.submit_login(login, name, password)
        done = b.submit_code(second, code_at(secret, clock()))
        tokens = b.exchange(redirect_query(done)["code"]).json()
        assert claims_of(tokens["id_token"])["auth_time"] >= int(clock()) - 5
    finally:
        b.close()


def test_policy_takes_a_user_without_a_factor_to_enrolment(
    mfa_api: Api, clock: ShiftedClock
) -> None:
    name, password = mfa_api.new_user("ops")
    b = MfaBrowser(mfa_api)
    try:
        enrol = b.submit_login(b.authorize(), name, password)
        assert enrol.status_code == 200 and 'action="/login/enrol"' in enrol.text
        assert "must use a second factor" in enrol.text
        secret = secret_of(enrol)
        codes_page = b.http.post(
            "/login/enrol", data={**b.hidden(enrol), "code": code_at(secret, clock())}
        )
        assert len(recovery_codes_of(codes_page)) == 10
        assert not b.has_session_cookie()
        done = b.http.post("/login/continue", data=b.hidden(codes_page))
        assert done.status_code == 303 and done.headers["location"].startswith(SPA)
        tokens = b.exchange(redirect_query(done)["code"]).json()
        assert claims_of(tokens["id_token"])["acr"] == "mfa"
    finally:
        b.close()


def test_a_role_requiring_mfa_steps_up_a_password_only_sso_session(
    mfa_api: Api, clock: ShiftedClock
) -> None:
    """The role came after the sign-in: /authorize asks for the second factor (or its
    enrolment) instead of answering with a code on the password-only session."""
    name, password = mfa_api.new_user()
    bare, bare_password = mfa_api.new_user()
    b, c = MfaBrowser(mfa_api), MfaBrowser(mfa_api)
    try:
        b.tokens(name, password)
        assert b.account_sign_in(name, password).status_code == 303
        secret, _ = b.enrol_totp(clock)
        clock.advance(30)
        c.tokens(bare, bare_password)
        assert b.authorize().status_code == 302 and c.authorize().status_code == 302
        for user in (name, bare):
            granted = mfa_api.admin("PUT", f"/admin/users/{user}/roles", json={"roles": ["ops"]})
            assert granted.status_code == 200, granted.text
        silent = b.authorize(prompt="none")
        assert redirect_query(silent)["error"] == "interaction_required"
        page = b.authorize()
        assert page.status_code == 200 and 'action="/login/second-factor"' in page.text
        assert 'name="password"' not in page.text
        done = b.submit_code(page, code_at(secret, clock()))
        tokens = b.exchange(redirect_query(done)["code"]).json()
        assert claims_of(tokens["access_token"])["acr"] == "mfa"
        assert b.authorize().status_code == 302  # stepped up: single sign-on again
        enrol = c.authorize()
        assert enrol.status_code == 200 and 'action="/login/enrol"' in enrol.text
        codes = c.http.post(
            "/login/enrol", data={**c.hidden(enrol), "code": code_at(secret_of(enrol), clock())}
        )
        finished = c.http.post("/login/continue", data=c.hidden(codes))
        assert finished.status_code == 303 and finished.headers["location"].startswith(SPA)
        assert (
            claims_of(c.exchange(redirect_query(finished)["code"]).json()["id_token"])["acr"]
            == "mfa"
        )
    finally:
        b.close()
        c.close()


def test_a_password_an_admin_reset_does_not_skip_the_second_factor(
    mfa_api: Api, clock: ShiftedClock
) -> None:
    name, _, secret, _ = _enrolled(mfa_api, clock)
    reset = mfa_api.admin(
        "POST",
        f"/admin/users/{name}/password",
        json={"password": "temporary-pass-1", "must_change": True},
    )
    assert reset.status_code == 204, reset.text
    b = MfaBrowser(mfa_api)
    try:
        asked = b.submit_login(b.authorize(), name, "temporary-pass-1")
        assert 'action="/login/new-password"' in asked.text
        new = {"new_password": "my-own-pass-12", "confirm_password": "my-own-pass-12"}
        second = b.http.post("/login/new-password", data={**b.hidden(asked), **new})
        assert second.status_code == 200 and 'action="/login/second-factor"' in second.text
        assert not b.has_session_cookie()  # the new password alone opened nothing
        done = b.submit_code(second, code_at(secret, clock()))
        assert (
            claims_of(b.exchange(redirect_query(done)["code"]).json()["id_token"])["acr"] == "mfa"
        )
    finally:
        b.close()


def test_changing_factors_needs_a_recent_sign_in(mfa_api: Api, clock: ShiftedClock) -> None:
    name, password = mfa_api.new_user()
    b = MfaBrowser(mfa_api)
    try:
        b.account_sign_in(name, password)
        b.enrol_totp(clock)
        page = b.security_page()
        totp_page = b.http.get("/account/security/totp")
        (factor,) = b.factor_ids()
        clock.advance(mfa_api.core.settings.mfa_fresh_sign_in + 1)
        refused = b.http.post(f"/account/security/factors/{factor}/remove", data=b.hidden(page))
        assert refused.status_code == 403 and "sign in again" in refused.text.lower()
        assert b.factor_ids() == [factor]
        # Nor can a stolen session add a factor of its own or take new recovery codes.
        added = b.http.post(
            "/account/security/totp",
            data={**b.hidden(totp_page), "code": code_at(secret_of(totp_page), clock())},
        )
        codes = b.http.post("/account/security/recovery-codes", data=b.hidden(page))
        assert added.status_code == codes.status_code == 403
        assert b.factor_ids() == [factor] and recovery_codes_of(codes) == []
    finally:
        b.close()
    failure = _audit(mfa_api, "mfa_remove", name)[0]
    assert failure["outcome"] == "failure" and failure["details"]["reason"] == "stale_sign_in"
    for action in ("mfa_enrol", "mfa_recovery_codes"):
        assert _audit(mfa_api, action, name)[0]["details"]["reason"] == "stale_sign_in", action


def test_removing_a_factor_ends_the_other_sessions(mfa_api: Api, clock: ShiftedClock) -> None:
    name, password, secret, _ = _enrolled(mfa_api, clock)
    other = MfaBrowser(mfa_api)
    me = MfaBrowser(mfa_api)
    try:
        done = other.submit_code(
            other.submit_login(other.authorize(), name, password), code_at(secret, clock())
        )
        tokens = other.exchange(redirect_query(done)["code"]).json()
        clock.advance(30)
        second = me.account_sign_in(name, password)
        assert me.submit_code(second, code_at(secret, clock())).status_code == 303
        cursor = mfa_api.latest_cursor()
        page = me.security_page()
        (factor,) = me.factor_ids()
        removed = me.http.post(f"/account/security/factors/{factor}/remove", data=me.hidden(page))
        assert removed.status_code == 303
        assert me.factor_ids() == []  # this browser stays signed in
        sid = claims_of(tokens["access_token"])["sid"]
        assert ("sid", sid) in mfa_api.events(cursor)
        assert mfa_api.userinfo(tokens["access_token"]).status_code == 401
        assert other.authorize().status_code == 200  # the other browser must sign in again
    finally:
        other.close()
        me.close()
    assert _audit(mfa_api, "mfa_remove", name)[0]["outcome"] == "success"


def test_another_users_factor_can_be_neither_renamed_nor_removed(
    mfa_api: Api, clock: ShiftedClock
) -> None:
    victim, victim_password = mfa_api.new_user()
    owner = MfaBrowser(mfa_api)
    try:
        owner.account_sign_in(victim, victim_password)
        owner.enrol_totp(clock)
        (factor,) = owner.factor_ids()
    finally:
        owner.close()
    name, password = mfa_api.new_user()
    b = MfaBrowser(mfa_api)
    try:
        assert b.account_sign_in(name, password).status_code == 303
        b.enrol_totp(clock)  # the attacker's own page, with its forms
        page = b.security_page()
        for action, extra in (("rename", {"name": "mine now"}), ("remove", {})):
            answer = b.http.post(
                f"/account/security/factors/{factor}/{action}", data={**b.hidden(page), **extra}
            )
            assert answer.status_code == 404, action
            assert "not yours or is gone" in text_of(answer)
    finally:
        b.close()
    victim_id = mfa_api.user_id(victim)

    async def stored() -> list[tuple[str, str | None]]:
        async with mfa_api.core.db.transaction() as session:
            return [(r.id, r.name) for r in await factor_store.list_factors(session, victim_id)]

    assert mfa_api.server.call(stored()) == [(factor, "phone")]


def test_recovery_codes_can_be_made_anew(mfa_api: Api, clock: ShiftedClock) -> None:
    name, password = mfa_api.new_user()
    b = MfaBrowser(mfa_api)
    try:
        b.account_sign_in(name, password)
        _, old = b.enrol_totp(clock)
        page = b.security_page()
        fresh = recovery_codes_of(
            b.http.post("/account/security/recovery-codes", data=b.hidden(page))
        )
        assert len(fresh) == 10 and not set(fresh) & set(old)
    finally:
        b.close()
    clock.advance(30)
    b2 = MfaBrowser(mfa_api)
    try:
        stale = b2.submit_code(b2.submit_login(b2.authorize(), name, password), old[0])
        assert "That code did not work" in text_of(stale)
        assert b2.submit_code(stale, fresh[0]).status_code == 303
    finally:
        b2.close()


def test_admin_sees_and_resets_a_users_factors(mfa_api: Api, clock: ShiftedClock) -> None:
    name, password, secret, _ = _enrolled(mfa_api, clock)
    ids = [mfa_api.user_id(name), mfa_api.user_id("alice")]
    assert mfa_api.server.call(mfa_enabled_users(mfa_api.core, ids)) == {ids[0]}
    seen = mfa_api.admin("GET", f"/admin/users/{name}/mfa").json()
    assert seen["mfa_enabled"] is True and seen["recovery_codes_left"] == 10
    assert seen["factors"][0]["kind"] == "totp" and "totp_secret" not in seen["factors"][0]
    b = MfaBrowser(mfa_api)
    try:
        done = b.submit_code(
            b.submit_login(b.authorize(), name, password), code_at(secret, clock())
        )
        tokens = b.exchange(redirect_query(done)["code"]).json()
        cursor = mfa_api.latest_cursor()
        reset = mfa_api.admin("DELETE", f"/admin/users/{name}/mfa")
        assert reset.status_code == 200 and reset.json() == {"factors_removed": 1}
        assert ("sub", claims_of(tokens["access_token"])["sub"]) in mfa_api.events(cursor)
        assert mfa_api.userinfo(tokens["access_token"]).status_code == 401
        # Password only from now on, until the user enrols again.
        assert b.sign_in(name, password)["code"]
    finally:
        b.close()
    event = _audit(mfa_api, "mfa_reset", name)[0]
    assert event["actor"] == "admin" and event["details"]["factors"] == 1
    assert mfa_api.admin("GET", "/admin/users/nobody-here/mfa").status_code == 404
    alice = mfa_api.http.get(
        f"/admin/users/{name}/mfa", headers=mfa_api.bearer(mfa_api.login()["access_token"])
    )
    assert alice.status_code == 403


def test_discovery_lists_the_acr_values(mfa_api: Api) -> None:
    doc = mfa_api.http.get("/.well-known/openid-configuration").json()
    assert doc["acr_values_supported"] == ["pwd", "mfa"] and "acr" in doc["claims_supported"]


def test_totp_secrets_are_sealed_under_the_master_key(start_server: Any) -> None:
    clock = ShiftedClock()
    api: Api = start_server(clock=clock, master_key="m" * 32)
    register_browser_clients(api)
    name, password, secret, _ = _enrolled(api, clock)
    user_id = api.user_id(name)

    async def stored() -> list[str | None]:
        async with api.core.db.transaction() as session:
            rows = await factor_store.list_factors(session, user_id)
            return [r.totp_secret for r in rows]

    (value,) = api.server.call(stored())
    assert value is not None and value.startswith("enc:") and secret not in value
    b = MfaBrowser(api)
    try:
        done = b.submit_code(
            b.submit_login(b.authorize(), name, password), code_at(secret, clock())
        )
        assert done.status_code == 303
    finally:
        b.close()
