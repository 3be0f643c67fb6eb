"""The sign-in pages: failures, CSRF, consent, single sign-on and logout."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.harness import ALICE, Api, basic, claims_of
from support.oidc_flow import PARTNER, SPA, Browser, Pkce, redirect_query, register_browser_clients


@pytest.fixture
def partner_secret(api: Api) -> str:
    return register_browser_clients(api)


@pytest.fixture
def browser(api: Api, partner_secret: str) -> Iterator[Browser]:
    b = Browser(api)
    yield b
    b.close()


def _audit(api: Api, action: str) -> list[dict[str, object]]:
    response = api.admin("GET", "/admin/audit", params={"action": action})
    assert response.status_code == 200, response.text
    events: list[dict[str, object]] = response.json()["events"]
    return events


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong-password-1"), ("mallory", "whatever-pass"), ("bob", "")],
    ids=["wrong-password", "unknown-user", "empty-password"],
)
def test_failed_sign_in_stays_on_the_page_with_one_neutral_message(
    api: Api, browser: Browser, username: str, password: str
) -> None:
    page = browser.authorize()
    again = browser.submit_login(page, username, password)
    assert again.status_code == 200
    assert 'role="alert"' in again.text and "Invalid username or password." in again.text
    assert 'action="/login"' in again.text
    assert not any(c.name == "authmesh_session" for c in browser.http.cookies.jar)


def test_blocked_user_cannot_sign_in_and_sees_the_same_message(api: Api, browser: Browser) -> None:
    name, password = api.new_user()
    assert api.admin("POST", f"/admin/users/{name}/block").status_code == 200
    page = browser.submit_login(browser.authorize(), name, password)
    assert page.status_code == 200 and "Invalid username or password." in page.text
    failures = [e for e in _audit(api, "login") if e["subject"] == name]
    assert failures and failures[0]["outcome"] == "failure"


def test_sign_in_is_audited_with_the_client(api: Api, browser: Browser) -> None:
    name, password = api.new_user()
    browser.sign_in(name, password)
    events = [e for e in _audit(api, "login") if e["subject"] == name]
    assert events[0]["outcome"] == "success" and events[0]["client_id"] == "spa"


def test_brute_force_on_the_form_is_limited(start_server: object) -> None:
    api: Api = start_server(login_max_failures=2, login_lock_after=100)  # type: ignore[operator]
    register_browser_clients(api)
    browser = Browser(api)
    try:
        page = browser.authorize()
        statuses = []
        for _ in range(4):
            page = browser.submit_login(page, "alice", "not-her-password")
            statuses.append(page.status_code)
        assert statuses[-1] == 429
        assert "Too many sign-in attempts" in page.text
    finally:
        browser.close()


def test_login_post_without_csrf_token_is_refused(api: Api, browser: Browser) -> None:
    page = browser.authorize()
    fields = browser.hidden(page)
    response = browser.http.post(
        "/login", data={"request": fields["request"], "username": "alice", "password": ALICE[1]}
    )
    assert response.status_code == 400 and "location" not in response.headers


def test_login_post_from_another_browser_is_refused(api: Api, browser: Browser) -> None:
    """Login CSRF: an attacker's form (token from the attacker's own cookie) fails."""
    attacker = Browser(api)
    try:
        fields = attacker.hidden(attacker.authorize())
    finally:
        attacker.close()
    browser.authorize()  # the victim has a CSRF cookie of their own
    response = browser.http.post(
        "/login", data={**fields, "username": "alice", "password": ALICE[1]}
    )
    assert response.status_code == 400
    assert not any(c.name == "authmesh_session" for c in browser.http.cookies.jar)


def test_tampered_request_state_is_refused(browser: Browser) -> None:
    page = browser.authorize()
    fields = browser.hidden(page)
    fields["request"] = fields["request"][:-4] + "AAAA"
    response = browser.http.post(
        "/login", data={**fields, "username": "alice", "password": ALICE[1]}
    )
    assert response.status_code == 400


def test_third_party_client_asks_consent_once(
    api: Api, browser: Browser, partner_secret: str
) -> None:
    page = browser.authorize(client_id="partner", redirect_uri=PARTNER)
    consent = browser.submit_login(page, *ALICE)
    assert consent.status_code == 200 and 'action="/consent"' in consent.text
    assert "Partner Reports" in consent.text and "orders:read" in consent.text
    done = browser.submit_consent(consent, "allow")
    assert done.status_code == 303
    code = redirect_query(done)["code"]
    tokens = browser.exchange(
        code,
        client_id="partner",
        redirect_uri=PARTNER,
        client_secret=partner_secret,
    )
    assert tokens.status_code == 200, tokens.text

    browser.pkce = Pkce.make()
    again = browser.authorize(client_id="partner", redirect_uri=PARTNER)
    assert again.status_code == 302 and "code" in redirect_query(again)
    forced = browser.authorize(client_id="partner", redirect_uri=PARTNER, prompt="consent")
    assert forced.status_code == 200 and 'action="/consent"' in forced.text


def test_denied_consent_is_access_denied(browser: Browser) -> None:
    page = browser.authorize(client_id="partner", redirect_uri=PARTNER)
    done = browser.submit_consent(browser.submit_login(page, *ALICE), "deny")
    assert done.status_code == 303
    assert redirect_query(done)["error"] == "access_denied"


def test_prompt_none_without_consent_is_consent_required(browser: Browser) -> None:
    browser.sign_in(*ALICE)
    response = browser.authorize(client_id="partner", redirect_uri=PARTNER, prompt="none")
    assert redirect_query(response)["error"] == "consent_required"


def test_withdrawn_consent_ends_the_clients_sessions(
    api: Api, browser: Browser, partner_secret: str
) -> None:
    name, password = api.new_user()
    page = browser.authorize(client_id="partner", redirect_uri=PARTNER)
    done = browser.submit_consent(browser.submit_login(page, name, password), "allow")
    tokens = browser.exchange(
        redirect_query(done)["code"],
        client_id="partner",
        redirect_uri=PARTNER,
        client_secret=partner_secret,
    ).json()
    own = api.login(name, password)["access_token"]
    listed = api.http.get("/account/consents", headers=api.bearer(own)).json()
    assert [c["client_id"] for c in listed["consents"]] == ["partner"]

    cursor = api.latest_cursor()
    gone = api.http.delete("/account/consents/partner", headers=api.bearer(own))

    assert gone.status_code == 204
    sid = claims_of(tokens["access_token"])["sid"]
    assert ("sid", sid) in api.events(after=cursor)
    assert api.http.delete("/account/consents/partner", headers=api.bearer(own)).status_code == 404
    browser.pkce = Pkce.make()
    asked = browser.authorize(client_id="partner", redirect_uri=PARTNER)
    assert asked.status_code == 200 and 'action="/consent"' in asked.text


def test_block_ends_the_browser_session(api: Api, browser: Browser) -> None:
    name, password = api.new_user()
    browser.sign_in(name, password)
    assert browser.authorize().status_code == 302
    api.admin("POST", f"/admin/users/{name}/block")
    api.admin("POST", f"/admin/users/{name}/unblock")
    page = browser.authorize()
    assert page.status_code == 200 and 'action="/login"' in page.text


def test_logout_everywhere_ends_the_browser_session(api: Api, browser: Browser) -> None:
    name, password = api.new_user()
    tokens = browser.tokens(name, password)
    response = api.http.post(
        "/account/logout", params={"all": "true"}, headers=api.bearer(tokens["access_token"])
    )
    assert response.status_code == 204
    assert browser.authorize().status_code == 200


def test_rp_initiated_logout_ends_sso_and_every_token(api: Api, browser: Browser) -> None:
    tokens = browser.tokens(*ALICE)
    cursor = api.latest_cursor()

    response = browser.http.get(
        "/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://spa.example/bye",
            "state": "bye-state",
        },
    )

    assert response.status_code == 303
    assert response.headers["location"] == "https://spa.example/bye?state=bye-state"
    assert "authmesh_session=" in response.headers["set-cookie"]
    sid = claims_of(tokens["access_token"])["sid"]
    assert ("sid", sid) in api.events(after=cursor)
    assert api.introspect(tokens["access_token"]) == {"active": False}
    assert api.refresh(tokens["refresh_token"], client_id="spa").status_code == 400
    page = browser.authorize()
    assert page.status_code == 200 and 'action="/login"' in page.text
    assert [e for e in _audit(api, "logout") if e["client_id"] == "spa"]


@pytest.mark.parametrize(
    "params",
    [
        {"post_logout_redirect_uri": "https://evil.example/"},
        {"post_logout_redirect_uri": SPA},
        {"post_logout_redirect_uri": "https://spa.example/bye"},
        {"id_token_hint": "not.a.token"},
        {"id_token_hint": "x", "client_id": "spa"},
    ],
    ids=["foreign-uri", "redirect-uri-not-logout-uri", "uri-without-client", "bad-hint", "junk"],
)
def test_logout_never_redirects_where_it_should_not(
    api: Api, browser: Browser, params: dict[str, str]
) -> None:
    tokens = browser.tokens(*ALICE)
    if (
        params.get("post_logout_redirect_uri") != "https://spa.example/bye"
        and "id_token_hint" not in params
    ):
        params = {"id_token_hint": tokens["id_token"], **params}
    response = browser.http.get("/logout", params=params)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert browser.authorize().status_code == 302  # still signed in


def test_logout_without_hint_asks_first_and_needs_csrf(api: Api, browser: Browser) -> None:
    browser.sign_in(*ALICE)
    page = browser.http.get("/logout")
    assert page.status_code == 200 and 'action="/logout"' in page.text
    assert browser.authorize().status_code == 302  # a GET alone signs nobody out

    forged = browser.http.post("/logout", data={"confirm": "yes", "csrf_token": "x" * 64})
    assert forged.status_code == 400
    assert browser.authorize().status_code == 302

    done = browser.http.post("/logout", data={**browser.hidden(page), "confirm": "yes"})
    assert done.status_code == 200 and "You are signed out" in done.text
    assert browser.authorize().status_code == 200


def test_confidential_client_must_authenticate_at_the_token_endpoint(
    api: Api, browser: Browser, partner_secret: str
) -> None:
    page = browser.authorize(client_id="partner", redirect_uri=PARTNER)
    done = browser.submit_consent(browser.submit_login(page, *ALICE), "allow")
    code = redirect_query(done)["code"]
    anonymous = browser.exchange(code, client_id="partner", redirect_uri=PARTNER)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
    authed = api.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": PARTNER,
            "code_verifier": browser.pkce.verifier,
        },
        headers={"Authorization": basic("partner", partner_secret)},
    )
    assert authed.status_code == 200, authed.text


def test_static_stylesheet_is_served_locally(api: Api) -> None:
    css = api.http.get("/static/authmesh.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert api.http.get("/static/..%2Fapp.py").status_code == 404
    assert api.http.get("/static/missing.css").status_code == 404


def test_admin_creates_a_user_with_an_email_released_by_scope(api: Api, browser: Browser) -> None:
    bad = api.admin(
        "POST",
        "/admin/users",
        json={"username": "eve", "password": "eve-password-12", "email": "x"},
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"
    made = api.admin(
        "POST",
        "/admin/users",
        json={"username": "erin", "password": "erin-password-12", "email": "erin@example.com"},
    )
    assert made.status_code == 201, made.text
    tokens = browser.tokens("erin", "erin-password-12")
    assert claims_of(tokens["id_token"])["email"] == "erin@example.com"
    assert api.userinfo(tokens["access_token"]).json()["email"] == "erin@example.com"


def test_non_ascii_csrf_token_is_refused_not_a_crash(browser: Browser) -> None:
    fields = browser.hidden(browser.authorize())
    response = browser.http.post("/login", data={**fields, "csrf_token": "é" * 64})
    assert response.status_code == 400 and "not sent from this site" in response.text


def test_an_empty_csrf_cookie_is_replaced_so_the_form_still_works(browser: Browser) -> None:
    browser.http.cookies.set("authmesh_csrf", "", domain="127.0.0.1", path="/")
    page = browser.authorize()
    assert "authmesh_csrf=" in page.headers.get("set-cookie", "")
    assert browser.submit_login(page, *ALICE).status_code == 303
