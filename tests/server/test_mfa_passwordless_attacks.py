"""Attacks on the passwordless passkey sign-in: a flood of bad assertions from one
address, and a blocked user's passkey. Both refused, neither opens a session."""

from __future__ import annotations

from typing import Any

import httpx

from support.harness import Api
from support.mfa import MfaBrowser, ShiftedClock, options_of, text_of, with_passkey
from support.oidc_flow import redirect_query, register_browser_clients
from support.soft_authenticator import SoftPasskey, challenge_of_options


def _passkey_page(b: MfaBrowser) -> httpx.Response:
    page = b.http.post("/login", data={**b.hidden(b.authorize()), "method": "passkey"})
    assert page.status_code == 200 and 'action="/login/passkey"' in page.text, page.text
    return page


def _post(b: MfaBrowser, page: httpx.Response, passkey: SoftPasskey, origin: str) -> httpx.Response:
    credential = passkey.assert_(challenge_of_options(options_of(page)), origin)
    return b.http.post("/login/passkey", data={**b.hidden(page), "credential": credential})


def test_a_flood_of_bad_passkey_assertions_from_one_address_is_limited(
    start_server: Any,
) -> None:
    api: Api = start_server(login_max_failures=2, login_lock_after=4, clock=ShiftedClock())
    register_browser_clients(api)
    _, _, passkey, owner = with_passkey(api, passwordless=True)
    owner.close()
    b = MfaBrowser(api)
    try:
        statuses = [
            _post(b, _passkey_page(b), passkey, "https://evil.example").status_code
            for _ in range(5)
        ]
        assert statuses[0] == 200 and statuses[-1] == 429, statuses
        # While the address is held back, even the owner's good assertion is refused.
        held = _post(b, _passkey_page(b), passkey, api.url)
        assert held.status_code == 429 and "Too many attempts" in text_of(held)
        assert not b.has_session_cookie()
    finally:
        b.close()


def test_a_blocked_users_passkey_signs_nobody_in(start_server: Any) -> None:
    api: Api = start_server()
    register_browser_clients(api)
    name, _, passkey, owner = with_passkey(api, passwordless=True)
    owner.close()
    assert api.admin("POST", f"/admin/users/{name}/block").status_code == 200
    b = MfaBrowser(api)
    try:
        refused = _post(b, _passkey_page(b), passkey, api.url)
        assert "could not be used" in text_of(refused), refused.text
        assert "location" not in refused.headers and not b.has_session_cookie()
    finally:
        b.close()
    unblocked = api.admin("POST", f"/admin/users/{name}/unblock")
    assert unblocked.status_code == 200
    b = MfaBrowser(api)
    try:  # the same passkey works again once unblocked: the refusal was the block's
        done = _post(b, _passkey_page(b), passkey, api.url)
        assert done.status_code == 303 and "code" in redirect_query(done), done.text
    finally:
        b.close()
