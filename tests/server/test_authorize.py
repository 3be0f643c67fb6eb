"""The authorization endpoint and the code grant: OpenID Connect Basic OP behaviours."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import pytest

from authmesh.jose import KeySet, TokenRejected, VerifyPolicy, verify_jwt
from authmesh.server.oidc.id_tokens import token_hash
from authmesh.testing import FakeClock
from support.harness import ALICE, Api, claims_of, header_of
from support.oidc_flow import SPA, Browser, Pkce, redirect_query, register_browser_clients


@pytest.fixture
def browser(api: Api) -> Iterator[Browser]:
    register_browser_clients(api)
    b = Browser(api)
    yield b
    b.close()


def test_sign_in_then_code_then_tokens(api: Api, browser: Browser) -> None:
    page = browser.authorize()
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert "form-action 'self' https://spa.example" in csp
    assert '<label for="username">Username</label>' in page.text

    done = browser.submit_login(page, *ALICE)
    assert done.status_code == 303
    assert done.headers["location"].startswith(SPA + "?")
    query = redirect_query(done)
    assert query["state"] == "xyz" and query["iss"] == api.url
    cookie = next(c for c in browser.http.cookies.jar if c.name == "authmesh_session")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.path == "/"
    assert "samesite=lax" in done.headers["set-cookie"].lower()

    response = browser.exchange(query["code"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["refresh_token"]
    assert body["scope"] == "email openid orders:read profile"

    access = api.verify(body["access_token"], audience="orders")
    assert access["client_id"] == "spa" and access["preferred_username"] == "alice"
    id_claims = claims_of(body["id_token"])
    assert header_of(body["id_token"])["typ"] == "JWT"
    assert id_claims["iss"] == api.url and id_claims["aud"] == "spa"
    assert id_claims["sub"] == access["sub"] == api.user_id("alice")
    assert id_claims["nonce"] == "n-0S6_WzA2Mj"
    assert id_claims["sid"] == access["sid"]
    assert id_claims["amr"] == ["pwd"]
    assert abs(id_claims["auth_time"] - time.time()) < 60
    alg = header_of(body["id_token"])["alg"]
    assert id_claims["at_hash"] == token_hash(body["access_token"], alg)
    assert id_claims["preferred_username"] == "alice"


def test_id_token_verifies_with_pyjwt_and_is_no_access_token(api: Api, browser: Browser) -> None:
    body = browser.tokens(*ALICE)
    jwks_uri = api.http.get("/.well-known/openid-configuration").json()["jwks_uri"]
    key = jwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(body["id_token"])
    claims = jwt.decode(
        body["id_token"], key.key, algorithms=["EdDSA"], audience="spa", issuer=api.url
    )
    assert claims["nonce"] == "n-0S6_WzA2Mj"

    keys = KeySet.from_jwks(api.jwks())
    as_access = VerifyPolicy.for_access_tokens(issuer=api.url, audience="spa")
    with pytest.raises(TokenRejected):
        verify_jwt(body["id_token"], keys, as_access)
    as_id = VerifyPolicy(issuer=api.url, audience=frozenset({"spa"}), types=frozenset({"JWT"}))
    with pytest.raises(TokenRejected):
        verify_jwt(body["access_token"], keys, as_id)
    # The auth server's own APIs refuse an ID token as a bearer token.
    assert api.userinfo(body["id_token"]).status_code == 401


def test_second_authorize_uses_the_sso_session(api: Api, browser: Browser) -> None:
    browser.tokens(*ALICE)
    browser.pkce = Pkce.make()
    again = browser.authorize()
    assert again.status_code == 302
    query = redirect_query(again)
    assert browser.exchange(query["code"]).status_code == 200


def test_replayed_code_is_refused_and_revokes_what_it_issued(api: Api, browser: Browser) -> None:
    query = browser.sign_in(*ALICE)
    first = browser.exchange(query["code"])
    assert first.status_code == 200
    body = first.json()
    cursor = api.latest_cursor()

    replay = browser.exchange(query["code"])

    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    sid = claims_of(body["access_token"])["sid"]
    assert ("sid", sid) in api.events(after=cursor)
    assert api.introspect(body["access_token"]) == {"active": False}
    refreshed = api.refresh(body["refresh_token"], client_id="spa")
    assert refreshed.status_code == 400
    assert api.userinfo(body["access_token"]).status_code == 401


def test_concurrent_exchanges_of_one_code_give_one_answer_then_end_its_session(
    api: Api, browser: Browser
) -> None:
    query = browser.sign_in(*ALICE)
    cursor = api.latest_cursor()
    form = {
        "grant_type": "authorization_code",
        "code": query["code"],
        "redirect_uri": SPA,
        "client_id": "spa",
        "code_verifier": browser.pkce.verifier,
    }
    start = threading.Barrier(2)

    def exchange() -> httpx.Response:
        with httpx.Client(base_url=api.url, timeout=20) as http:
            start.wait()
            return http.post("/oauth/token", data=form)

    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(lambda _: exchange(), range(2)))

    assert sorted(r.status_code for r in responses) == [200, 400], [r.text for r in responses]
    (won,) = (r.json() for r in responses if r.status_code == 200)
    (lost,) = (r.json() for r in responses if r.status_code == 400)
    assert lost["error"] == "invalid_grant"
    # The loser is a replay: the session the winner opened ends with it.
    sid = claims_of(won["access_token"])["sid"]
    assert ("sid", sid) in api.events(after=cursor)
    assert api.introspect(won["access_token"]) == {"active": False}
    assert api.refresh(won["refresh_token"], client_id="spa").status_code == 400


def test_wrong_verifier_is_refused_and_burns_the_code(browser: Browser) -> None:
    query = browser.sign_in(*ALICE)
    wrong = browser.exchange(query["code"], code_verifier=Pkce.make().verifier)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert browser.exchange(query["code"]).status_code == 400


def test_missing_verifier_is_invalid_request(browser: Browser) -> None:
    query = browser.sign_in(*ALICE)
    response = browser.exchange(query["code"], code_verifier="")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"code_challenge": ""}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": ""}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"response_type": ""}, "invalid_request"),
        ({"scope": "openid admin:all"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "sometimes"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"state": "s" * 2000}, "invalid_request"),
    ],
    ids=[
        "no-pkce",
        "pkce-plain",
        "pkce-no-method",
        "implicit",
        "hybrid",
        "no-response-type",
        "scope-not-allowed",
        "prompt-none-combined",
        "prompt-unknown",
        "max-age-negative",
        "request-object",
        "fragment-mode",
        "state-too-long",
    ],
)
def test_bad_requests_go_back_to_the_client(
    api: Api, browser: Browser, params: dict[str, str], error: str
) -> None:
    response = browser.authorize(**params)
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith(SPA + "?")
    query = redirect_query(response)
    assert query["error"] == error
    assert query.get("state") == params.get("state", "xyz")
    assert query["iss"] == api.url


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "nobody"},
        {"client_id": ""},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": SPA + "/extra"},
        {"redirect_uri": SPA + "?next=https://evil.example"},
        {"redirect_uri": "https://spa.example.evil.example/callback"},
        {"redirect_uri": ""},
        {"redirect_uri": "http://127.0.0.1:8080/other"},
    ],
    ids=[
        "unknown-client",
        "no-client",
        "foreign-redirect",
        "longer-path",
        "extra-query",
        "lookalike-host",
        "no-redirect",
        "loopback-other-path",
    ],
)
def test_untrusted_redirects_get_an_error_page_never_a_redirect(
    browser: Browser, params: dict[str, str]
) -> None:
    response = browser.authorize(**params, response_type="token")
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "evil.example" not in response.text


def test_repeated_parameter_gets_an_error_page(api: Api, browser: Browser) -> None:
    url = f"/authorize?client_id=spa&client_id=partner&redirect_uri={SPA}&response_type=code"
    response = browser.http.get(url)
    assert response.status_code == 400 and "location" not in response.headers


def test_loopback_redirect_matches_on_any_port(browser: Browser) -> None:
    uri = "http://127.0.0.1:53123/callback"
    query = browser.sign_in(*ALICE, redirect_uri=uri)
    response = browser.exchange(query["code"], redirect_uri=uri)
    assert response.status_code == 200, response.text
    other = browser.exchange(query["code"], redirect_uri="http://127.0.0.1:1/callback")
    assert other.status_code == 400


def test_code_bound_to_client_and_redirect_uri(api: Api, browser: Browser) -> None:
    query = browser.sign_in(*ALICE)
    assert (
        browser.exchange(query["code"], redirect_uri="http://127.0.0.1/callback").status_code == 400
    )
    query = browser.sign_in(*ALICE)
    foreign = browser.exchange(query["code"], client_id="web")
    assert foreign.status_code == 400
    assert foreign.json()["error"] == "unauthorized_client"


def test_expired_code_is_refused(start_server: object) -> None:
    clock = FakeClock()
    api = start_server(clock=clock)  # type: ignore[operator]
    register_browser_clients(api)
    browser = Browser(api)
    try:
        query = browser.sign_in(*ALICE)
        clock.advance(61)
        response = browser.exchange(query["code"])
        assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    finally:
        browser.close()


def test_prompt_none_without_a_session_is_login_required(browser: Browser) -> None:
    response = browser.authorize(prompt="none")
    assert response.status_code == 302
    assert redirect_query(response)["error"] == "login_required"


def test_prompt_none_with_a_session_answers_at_once(browser: Browser) -> None:
    browser.sign_in(*ALICE)
    response = browser.authorize(prompt="none")
    assert response.status_code == 302
    assert "code" in redirect_query(response)


def test_prompt_login_shows_the_form_despite_the_session(browser: Browser) -> None:
    browser.sign_in(*ALICE)
    page = browser.authorize(prompt="login")
    assert page.status_code == 200 and 'action="/login"' in page.text
    assert browser.submit_login(page, *ALICE).status_code == 303


def test_max_age_forces_a_fresh_sign_in(browser: Browser) -> None:
    browser.sign_in(*ALICE)
    assert browser.authorize(max_age="3600").status_code == 302
    time.sleep(1.1)  # auth_time has one-second resolution in tokens; max_age=0 needs a later one
    page = browser.authorize(max_age="0")
    assert page.status_code == 200 and 'action="/login"' in page.text
    assert redirect_query(browser.authorize(max_age="0", prompt="none"))["error"] == (
        "login_required"
    )


def test_login_hint_fills_in_the_username(browser: Browser) -> None:
    page = browser.authorize(login_hint="alice")
    assert 'name="username" type="text" value="alice"' in page.text


def test_userinfo_by_get_and_post_gives_claims_by_scope(api: Api, browser: Browser) -> None:
    async def set_email() -> None:
        from authmesh.store import users

        async with api.core.db.transaction() as session:
            user = await users.get_user(session, "alice", for_update=True)
            assert user is not None
            user.email = "alice@example.com"

    api.server.call(set_email())
    full = browser.tokens(*ALICE)
    got = api.userinfo(full["access_token"]).json()
    posted = api.http.post("/userinfo", headers=api.bearer(full["access_token"])).json()
    assert got == posted
    assert got["sub"] == api.user_id("alice")
    assert got["email"] == "alice@example.com" and got["preferred_username"] == "alice"
    assert claims_of(full["id_token"])["email"] == "alice@example.com"

    browser.pkce = Pkce.make()
    narrow = browser.exchange(redirect_query(browser.authorize(scope="openid"))["code"]).json()
    info = api.userinfo(narrow["access_token"]).json()
    assert "email" not in info and "preferred_username" not in info
    assert "email" not in claims_of(narrow["id_token"])


def test_discovery_lists_what_openid_connect_requires(api: Api) -> None:
    doc = api.http.get("/.well-known/openid-configuration").json()
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
    ):
        assert doc[name].startswith(api.url)
    assert doc["response_types_supported"] == ["code"]
    assert doc["subject_types_supported"] == ["public"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {"openid", "profile", "email"} <= set(doc["scopes_supported"])
    assert {"sub", "nonce", "auth_time", "at_hash", "email"} <= set(doc["claims_supported"])
    assert doc["id_token_signing_alg_values_supported"] == ["EdDSA"]
    assert "authorization_code" in doc["grant_types_supported"]
