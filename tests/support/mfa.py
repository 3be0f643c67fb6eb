"""Helpers of the multi-factor tests: a clock the tests move, TOTP codes, and the
account's security pages driven by hand over HTTP."""

from __future__ import annotations

import html
import re
import time

import httpx
import pyotp

from support.harness import Api
from support.oidc_flow import Browser
from support.soft_authenticator import SoftPasskey, challenge_of_options

__all__ = [
    "MfaBrowser",
    "ShiftedClock",
    "code_at",
    "options_of",
    "recovery_codes_of",
    "rp_id_of",
    "secret_of",
    "text_of",
    "with_passkey",
]

_SECRET = re.compile(r'<code class="secret">([A-Z2-7 ]+)</code>')
_CODES = re.compile(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>")
_OPTIONS = re.compile(r'data-options="([^"]*)"')
_FACTOR_FORM = re.compile(r'action="/account/security/factors/([0-9a-f-]{36})/remove"')


class ShiftedClock:
    """The real time plus an offset the test moves forward (the server's clock)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def code_at(secret: str, when: float) -> str:
    """The TOTP code of ``secret`` at time ``when``."""
    return pyotp.TOTP(secret).at(int(when))


def secret_of(page: httpx.Response) -> str:
    """The TOTP secret shown on an enrolment page."""
    found = _SECRET.search(page.text)
    assert found, page.text
    return found.group(1).replace(" ", "")


def recovery_codes_of(page: httpx.Response) -> list[str]:
    """The recovery codes shown once."""
    return _CODES.findall(page.text)


class MfaBrowser(Browser):
    """A browser stand-in that also knows the security pages and the second step."""

    def account_sign_in(self, username: str, password: str) -> httpx.Response:
        """Sign in on the security pages' own form; the answer to the password."""
        page = self.http.get("/account/security/signin")
        assert page.status_code == 200, page.text
        return self.http.post(
            "/account/security/signin",
            data={**self.hidden(page), "username": username, "password": password},
        )

    def enrol_totp(self, clock: ShiftedClock) -> tuple[str, list[str]]:
        """Set up an authenticator app from the security pages; its secret and the codes."""
        page = self.http.get("/account/security/totp")
        assert page.status_code == 200, page.text
        secret = secret_of(page)
        done = self.http.post(
            "/account/security/totp",
            data={**self.hidden(page), "code": code_at(secret, clock()), "name": "phone"},
        )
        assert done.status_code in (200, 303), done.text
        return secret, recovery_codes_of(done)

    def security_page(self) -> httpx.Response:
        page = self.http.get("/account/security")
        assert page.status_code == 200, page.text
        return page

    def factor_ids(self) -> list[str]:
        return _FACTOR_FORM.findall(self.security_page().text)

    def submit_code(self, page: httpx.Response, code: str) -> httpx.Response:
        """Answer the second step with a code."""
        assert 'action="/login/second-factor"' in page.text, page.text
        return self.http.post("/login/second-factor", data={**self.hidden(page), "code": code})

    def has_session_cookie(self) -> bool:
        return any(c.name == "authmesh_session" for c in self.http.cookies.jar)


def text_of(page: httpx.Response) -> str:
    """The page's text with entities decoded (for message assertions)."""
    return html.unescape(page.text)


def options_of(page: httpx.Response) -> str:
    """The WebAuthn options a sign-in or registration page hands its script."""
    found = _OPTIONS.search(page.text)
    assert found, page.text
    return html.unescape(found.group(1))


def rp_id_of(api: Api) -> str:
    return httpx.URL(api.url).host


def with_passkey(
    api: Api, *, passwordless: bool = False
) -> tuple[str, str, SoftPasskey, MfaBrowser]:
    """A new user who registered a passkey on the security page (signed in, browser open)."""
    name, password = api.new_user()
    b = MfaBrowser(api)
    assert b.account_sign_in(name, password).status_code == 303
    page = b.http.get("/account/security/passkeys/new")
    assert page.status_code == 200, page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    passkey = SoftPasskey(rp_id_of(api))
    credential = passkey.register(challenge_of_options(options_of(page)), api.url)
    form = {**b.hidden(page), "credential": credential, "name": "laptop"}
    if passwordless:
        form["passwordless"] = "yes"
    done = b.http.post("/account/security/passkeys", data=form)
    assert len(recovery_codes_of(done)) == 10, done.text
    return name, password, passkey, b
