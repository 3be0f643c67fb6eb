"""Attacks on the second factor, all refused and audited: code replay and brute force,
passkeys of another user, origin or RP, stale and spent challenges, CSRF and forms
moved between browsers, and changes without a recent sign-in (in test_mfa.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from authmesh.server import audit
from authmesh.server.audit import AuditQuery
from support.databases import db_target
from support.harness import Api, claims_of, launch
from support.mfa import (
    MfaBrowser,
    ShiftedClock,
    code_at,
    options_of,
    rp_id_of,
    text_of,
    with_passkey,
)
from support.oidc_flow import redirect_query, register_browser_clients
from support.soft_authenticator import SoftPasskey, challenge_of_options


@pytest.fixture(scope="module")
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, clock: ShiftedClock) -> Iterator[Api]:
    with db_target("sqlite", tmp_path_factory.mktemp("mfa-attacks")) as target:
        server = launch(target, clock=clock)
        register_browser_clients(server)
        try:
            yield server
        finally:
            server.close()
            server.server.stop()


def _audit(api: Api, action: str, subject: str | None = None) -> list[dict[str, Any]]:
    """The audit trail read from the server's database (an admin login could be
    refused: the brute-force test locks out the test's address)."""
    found = api.server.call(audit.query(api.core, AuditQuery(action=action, subject=subject)))
    return [e.to_json() for e in found]


def _second_step(api: Api, name: str, password: str) -> tuple[MfaBrowser, httpx.Response]:
    b = MfaBrowser(api)
    page = b.submit_login(b.authorize(), name, password)
    assert 'action="/login/second-factor"' in page.text, page.text
    return b, page


def _post_passkey(b: MfaBrowser, page: httpx.Response, credential: str) -> httpx.Response:
    return b.http.post("/login/second-factor", data={**b.hidden(page), "credential": credential})


# --- passkeys that work ----------------------------------------------------------


def test_passkey_as_second_factor_gives_hwk_and_mfa(api: Api) -> None:
    name, password, passkey, owner = with_passkey(api)
    owner.close()
    b, page = _second_step(api, name, password)
    try:
        assert "script-src 'self'" in page.headers["content-security-policy"]
        credential = passkey.assert_(challenge_of_options(options_of(page)), api.url)
        done = _post_passkey(b, page, credential)
        assert done.status_code == 303, done.text
        tokens = b.exchange(redirect_query(done)["code"]).json()
    finally:
        b.close()
    claims = claims_of(tokens["id_token"])
    assert claims["acr"] == "mfa" and {"pwd", "hwk", "user", "mfa"} <= set(claims["amr"])
    assert _audit(api, "mfa_verify", name)[0]["details"]["method"] == "passkey"


def test_passwordless_passkey_signs_in_alone(api: Api) -> None:
    name, _, passkey, owner = with_passkey(api, passwordless=True)
    owner.close()
    b = MfaBrowser(api)
    try:
        login = b.authorize()
        page = b.http.post("/login", data={**b.hidden(login), "method": "passkey"})
        assert page.status_code == 200 and 'action="/login/passkey"' in page.text
        options = options_of(page)
        assert '"allowCredentials": []' in options or '"allowCredentials":[]' in options
        credential = passkey.assert_(challenge_of_options(options), api.url)
        done = b.http.post("/login/passkey", data={**b.hidden(page), "credential": credential})
        assert done.status_code == 303, done.text
        tokens = b.exchange(redirect_query(done)["code"]).json()
    finally:
        b.close()
    claims = claims_of(tokens["id_token"])
    assert claims["amr"] == ["hwk", "user", "mfa"] and claims["acr"] == "mfa"
    assert claims["preferred_username"] == name


# --- passkey attacks -------------------------------------------------------------------


def test_another_users_passkey_is_refused(api: Api) -> None:
    victim, victim_password, _, b1 = with_passkey(api)
    _, _, mallory_key, b2 = with_passkey(api)
    b1.close()
    b2.close()
    b, page = _second_step(api, victim, victim_password)
    try:
        forged = mallory_key.assert_(challenge_of_options(options_of(page)), api.url)
        refused = _post_passkey(b, page, forged)
        assert refused.status_code == 200 and "could not be used" in text_of(refused)
        assert not b.has_session_cookie()
    finally:
        b.close()
    failure = _audit(api, "mfa_verify", victim)[0]
    assert failure["outcome"] == "failure" and "another user" in failure["details"]["reason"]


@pytest.mark.parametrize(
    ("origin", "rp_id"),
    [("https://evil.example", None), (None, "evil.example")],
    ids=["another-origin", "another-rp-id"],
)
def test_an_assertion_made_for_another_site_is_refused(
    api: Api, origin: str | None, rp_id: str | None
) -> None:
    name, password, passkey, owner = with_passkey(api)
    owner.close()
    b, page = _second_step(api, name, password)
    try:
        challenge = challenge_of_options(options_of(page))
        forged = passkey.assert_(challenge, origin or api.url, rp_id=rp_id)
        refused = _post_passkey(b, page, forged)
        assert "could not be used" in text_of(refused) and not b.has_session_cookie()
    finally:
        b.close()
    assert _audit(api, "mfa_verify", name)[0]["outcome"] == "failure"


def test_a_stale_or_spent_challenge_is_refused(api: Api, clock: ShiftedClock) -> None:
    name, password, passkey, owner = with_passkey(api)
    owner.close()
    b, page = _second_step(api, name, password)
    try:
        # An assertion for a challenge this server never gave; the failure spends the
        # page's challenge too, and the page comes back with a new one.
        wrong = passkey.assert_(b"x" * 32, api.url)
        page = _post_passkey(b, page, wrong)
        assert "could not be used" in text_of(page)
        # The right one works once; posted again (a replay), its challenge is spent.
        good = passkey.assert_(challenge_of_options(options_of(page)), api.url)
        assert _post_passkey(b, page, good).status_code == 303
        assert "could not be used" in text_of(_post_passkey(b, page, good))
        # A page left open past the limit.
        b2, page2 = _second_step(api, name, password)
        clock.advance(api.core.settings.mfa_pending_ttl + 1)
        late = passkey.assert_(challenge_of_options(options_of(page2)), api.url)
        stale = _post_passkey(b2, page2, late)
        assert stale.status_code == 400 and "took too long" in stale.text
        b2.close()
    finally:
        b.close()
    reasons = [e["details"].get("reason", "") for e in _audit(api, "mfa_verify")]
    assert any("already answered" in r for r in reasons)
    assert any("took too long" in r for r in reasons)


def test_a_cloned_passkey_whose_counter_went_back_is_refused(api: Api) -> None:
    name, password, passkey, owner = with_passkey(api)
    owner.close()
    b, page = _second_step(api, name, password)
    try:
        good = passkey.assert_(challenge_of_options(options_of(page)), api.url)
        assert _post_passkey(b, page, good).status_code == 303
    finally:
        b.close()
    passkey.counter = 0  # a copy of the key, made before that sign-in
    b, page = _second_step(api, name, password)
    try:
        cloned = passkey.assert_(challenge_of_options(options_of(page)), api.url)
        refused = _post_passkey(b, page, cloned)
        assert "could not be used" in text_of(refused) and not b.has_session_cookie()
    finally:
        b.close()
    failure = _audit(api, "mfa_verify", name)[0]
    assert failure["outcome"] == "failure" and "sign count" in failure["details"]["reason"]


def test_a_passkey_not_chosen_for_passwordless_cannot_sign_in_alone(api: Api) -> None:
    name, _, passkey, owner = with_passkey(api, passwordless=False)
    owner.close()
    b = MfaBrowser(api)
    try:
        page = b.http.post("/login", data={**b.hidden(b.authorize()), "method": "passkey"})
        credential = passkey.assert_(challenge_of_options(options_of(page)), api.url)
        refused = b.http.post("/login/passkey", data={**b.hidden(page), "credential": credential})
        assert "could not be used" in text_of(refused) and not b.has_session_cookie()
    finally:
        b.close()
    assert "without a password" in _audit(api, "mfa_verify", name)[0]["details"]["reason"]


def test_a_registration_for_another_origin_is_refused(api: Api) -> None:
    name, password = api.new_user()
    b = MfaBrowser(api)
    try:
        b.account_sign_in(name, password)
        page = b.http.get("/account/security/passkeys/new")
        forged = SoftPasskey(rp_id_of(api)).register(
            challenge_of_options(options_of(page)), "https://evil.example"
        )
        again = b.http.post(
            "/account/security/passkeys", data={**b.hidden(page), "credential": forged}
        )
        assert again.status_code == 200 and "could not be added" in again.text
        assert b.factor_ids() == []
    finally:
        b.close()
    assert _audit(api, "mfa_enrol", name)[0]["outcome"] == "failure"


# --- codes ------------------------------------------------------------------------


def test_brute_force_of_codes_is_limited_and_audited(
    start_server: Any, clock: ShiftedClock
) -> None:
    api: Api = start_server(login_max_failures=2, login_lock_after=4, clock=clock)
    register_browser_clients(api)
    name, password = api.new_user()
    b = MfaBrowser(api)
    try:
        b.account_sign_in(name, password)
        secret, _ = b.enrol_totp(clock)
        clock.advance(30)
        b2, page = _second_step(api, name, password)
        statuses = []
        for guess in ("111111", "222222", "333333", "444444", "555555"):
            page = b2.submit_code(page, guess)
            statuses.append(page.status_code)
        assert statuses[0] == 200 and statuses[-1] == 429
        assert "Too many attempts" in page.text
        # While locked, even the right code is refused.
        assert b2.submit_code(page, code_at(secret, clock())).status_code == 429
        b2.close()
    finally:
        b.close()
    reasons = [e["details"]["reason"] for e in _audit(api, "mfa_verify", name)]
    assert reasons.count("bad_code") >= 2 and reasons.count("rate_limited") >= 2


# --- CSRF and forms moved between browsers ----------------------------------------


def _account_pages(api: Api) -> tuple[MfaBrowser, dict[str, httpx.Response], str]:
    name, _, _, b = with_passkey(api)
    pages = {
        "security": b.security_page(),
        "totp": b.http.get("/account/security/totp"),
        "passkeys": b.http.get("/account/security/passkeys/new"),
    }
    return b, pages, name


def test_csrf_on_every_account_factor_form(api: Api) -> None:
    b, pages, name = _account_pages(api)
    (factor,) = b.factor_ids()
    forms = {
        f"/account/security/factors/{factor}/remove": "security",
        f"/account/security/factors/{factor}/rename": "security",
        "/account/security/recovery-codes": "security",
        "/account/security/totp": "totp",
        "/account/security/passkeys": "passkeys",
    }
    attacker = MfaBrowser(api)
    try:
        attacker.http.get("/account/security")  # the attacker's own CSRF cookie
        attacker_token = attacker.hidden(attacker.http.get("/account/security"))["csrf_token"]
        for path, page_name in forms.items():
            fields = b.hidden(pages[page_name])
            missing = b.http.post(path, data={"request": fields["request"], "code": "123456"})
            assert missing.status_code == 400, path
            foreign = b.http.post(
                path, data={"request": fields["request"], "csrf_token": attacker_token}
            )
            assert foreign.status_code == 400, path
        assert b.factor_ids() == [factor]  # nothing changed
    finally:
        attacker.close()
        b.close()
    refused = [
        e
        for e in _audit(api, "mfa_remove", name) + _audit(api, "mfa_enrol", name)
        if e["outcome"] == "failure" and e["details"]["reason"].startswith("form:")
    ]
    assert len(refused) >= 4


def test_csrf_on_every_sign_in_factor_form(api: Api, clock: ShiftedClock) -> None:
    name, password = api.new_user("user")
    b = MfaBrowser(api)
    try:
        b.account_sign_in(name, password)
        b.enrol_totp(clock)
        clock.advance(30)
    finally:
        b.close()
    victim, page = _second_step(api, name, password)
    attacker = MfaBrowser(api)
    try:
        attacker_fields = attacker.hidden(attacker.authorize())
        for path in ("/login/second-factor", "/login/enrol", "/login/continue", "/login/passkey"):
            fields = victim.hidden(page)
            assert victim.http.post(path, data={"request": fields["request"]}).status_code == 400
            crossed = victim.http.post(
                path,
                data={"request": fields["request"], "csrf_token": attacker_fields["csrf_token"]},
            )
            assert crossed.status_code == 400, path
        # The whole form moved to another browser (its own valid CSRF pair): not its sign-in.
        moved = attacker.http.post(
            "/login/second-factor",
            data={**attacker_fields, "request": victim.hidden(page)["request"], "code": "1"},
        )
        assert moved.status_code == 400 and "not made for this browser" in moved.text
    finally:
        attacker.close()
        victim.close()
    reasons = [e["details"].get("reason", "") for e in _audit(api, "mfa_verify")]
    assert any("not sent from this site" in r for r in reasons)
    assert any("not made for this browser" in r for r in reasons)


def test_a_passkey_is_named_renamed_and_removed(api: Api) -> None:
    name, _, passkey, b = with_passkey(api)
    try:
        page = b.security_page()
        assert "laptop" in page.text
        (factor,) = b.factor_ids()
        renamed = b.http.post(
            f"/account/security/factors/{factor}/rename",
            data={**b.hidden(page), "name": "  work   laptop "},
        )
        assert renamed.status_code == 303
        page = b.security_page()
        assert "work laptop" in page.text
        # Another user's factor id is not found, and nothing changes.
        other = b.http.post(
            "/account/security/factors/00000000-0000-0000-0000-000000000000/remove",
            data=b.hidden(page),
        )
        assert other.status_code == 404
        removed = b.http.post(f"/account/security/factors/{factor}/remove", data=b.hidden(page))
        assert removed.status_code == 303 and b.factor_ids() == []
        assert "only a password" in b.security_page().text
    finally:
        b.close()
    # The removed passkey no longer signs in, and the user signs in with a password alone.
    browser = MfaBrowser(api)
    try:
        page = browser.http.post(
            "/login", data={**browser.hidden(browser.authorize()), "method": "passkey"}
        )
        credential = passkey.assert_(challenge_of_options(options_of(page)), api.url)
        refused = browser.http.post(
            "/login/passkey", data={**browser.hidden(page), "credential": credential}
        )
        assert "could not be used" in text_of(refused)
    finally:
        browser.close()
    actions = [e["outcome"] for e in _audit(api, "mfa_remove", name)]
    assert actions == ["success", "failure"]
    assert _audit(api, "mfa_rename", name)
