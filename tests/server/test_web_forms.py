"""Signed form state, CSRF tokens and cookie names of the sign-in pages."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from authmesh.server.web.cookies import CookieJar
from authmesh.server.web.forms import FormSigner, InvalidForm


def test_form_state_round_trips_and_is_bound_to_its_purpose() -> None:
    signer = FormSigner(b"k" * 32)
    token = signer.dumps("login", {"req": {"client_id": "spa"}})
    assert signer.loads("login", token) == {"req": {"client_id": "spa"}}
    with pytest.raises(InvalidForm):
        signer.loads("consent", token)


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "eyJwIjoibG9naW4ifQ.AAAA.BBBB"],
    ids=["empty", "garbage", "forged"],
)
def test_forged_form_state_is_refused(token: str) -> None:
    with pytest.raises(InvalidForm):
        FormSigner(b"k" * 32).loads("login", token)


def test_form_state_of_another_server_is_refused() -> None:
    token = FormSigner(b"a" * 32).dumps("login", {"x": 1})
    with pytest.raises(InvalidForm):
        FormSigner(b"b" * 32).loads("login", token)


def test_form_state_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    signer = FormSigner(b"k" * 32)
    token = signer.dumps("login", {"x": 1})
    later = time.time() + 16 * 60
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(InvalidForm, match="expired"):
        signer.loads("login", token)


def test_csrf_token_is_bound_to_the_cookie() -> None:
    signer = FormSigner(b"k" * 32)
    cookie = signer.new_cookie_value()
    signer.check_csrf(cookie, signer.csrf_token(cookie))
    for cookie_value, presented in [
        (None, signer.csrf_token(cookie)),
        (cookie, None),
        (signer.new_cookie_value(), signer.csrf_token(cookie)),
        (cookie, "é" * 64),
    ]:
        with pytest.raises(InvalidForm):
            signer.check_csrf(cookie_value, presented)


def test_cookies_under_https_are_host_only_and_secure() -> None:
    jar = CookieJar.for_issuer("https://auth.example.com")
    response = Response()
    jar.set(response, jar.session_name, "v")
    header = response.headers["set-cookie"]
    assert header.startswith("__Host-authmesh_session=v;")
    assert "Secure" in header and "HttpOnly" in header and "Path=/" in header
    assert "samesite=lax" in header.lower() and "Domain" not in header
    plain = CookieJar.for_issuer("http://127.0.0.1:8000")
    assert (plain.session_name, plain.csrf_name) == ("authmesh_session", "authmesh_csrf")
