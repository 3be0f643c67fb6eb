"""Whatever a browser or an attacker sends to the sign-in endpoints: a page or a redirect,
never a 500 and never a traceback."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.harness import Api
from support.oidc_flow import SPA, Browser, Pkce, register_browser_clients

_SETTINGS = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
_NAMES = st.sampled_from(
    [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "prompt",
        "max_age",
        "login_hint",
        "request",
        "response_mode",
        "csrf_token",
        "username",
        "password",
        "decision",
        "confirm",
        "id_token_hint",
        "post_logout_redirect_uri",
    ]
)
_VALUES = st.one_of(
    st.sampled_from(
        ["code", "spa", SPA, "openid", "S256", "none", "login", "0", "allow", "yes", "alice"]
    ),
    st.sampled_from([Pkce.make().challenge, "a" * 43, "x.y.z", "%00", "\x00", "é" * 10]),
    st.text(max_size=60),
)
_PAIRS = st.lists(st.tuples(_NAMES, _VALUES), max_size=10)


@pytest.fixture(scope="module")
def signin_api(shared: Api) -> Api:
    register_browser_clients(shared)
    return shared


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    if response.status_code in (302, 303):
        location = response.headers["location"]
        assert location.startswith((SPA, "https://spa.example/", "/")), location


@pytest.mark.slow
def test_authorize_and_forms_never_fail_with_a_500(signin_api: Api) -> None:
    browser = Browser(signin_api)
    browser.authorize()  # a CSRF cookie, as a real browser would have
    http = browser.http

    @_SETTINGS
    @given(pairs=_PAIRS, path=st.sampled_from(["/authorize", "/login", "/consent", "/logout"]))
    def run(pairs: list[tuple[str, str]], path: str) -> None:
        body = urlencode(pairs, errors="surrogatepass") if pairs else ""
        if path in ("/authorize", "/logout"):
            _check(http.get(f"{path}?{body}"))
        _check(
            http.post(
                path, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
            )
        )

    try:
        run()
    finally:
        browser.close()
