"""The demo as a user meets it (``make run``'s defaults, on free ports): alice signs in to
the web app in a browser, is thrown out within about a second when an admin blocks her,
signs out; she sets up an authenticator app and a passkey from her account page and
signs in with the passkey alone."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from support.browser_mfa import enrol_totp_on_page, virtual_authenticator
from support.demo_process import DemoProcess


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    process = DemoProcess.in_folder(tmp_path_factory.mktemp("demo-web"))
    process.start()
    yield process
    process.stop()


def _admin(facts: dict[str, str], method: str, path: str, **kwargs: Any) -> httpx.Response:
    """The admin API of the demo's auth server, as the demo's admin."""
    token = httpx.post(
        f"{facts['AUTHMESH_ISSUER']}/oauth/token",
        data={
            "grant_type": "password",
            "client_id": facts["DEMO_CLIENT_ID"],
            "username": facts["ADMIN_USERNAME"],
            "password": facts["ADMIN_PASSWORD"],
        },
    ).json()["access_token"]
    response = httpx.request(
        method,
        f"{facts['AUTHMESH_ISSUER']}/admin/{path}",
        headers={"Authorization": f"Bearer {token}"},
        **kwargs,
    )
    assert response.status_code == 200, response.text
    return response


def _sign_in(page: Page, facts: dict[str, str]) -> None:
    page.goto(facts["WEBAPP_URL"])
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Username").fill(facts["USER_USERNAME"])
    page.get_by_label("Password").fill(facts["USER_PASSWORD"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in as")).to_contain_text("alice")


def test_alice_orders_then_is_thrown_out_when_blocked(
    demo: DemoProcess, page: Page, axe: Callable[[Page], list[str]], tmp_path: Path
) -> None:
    facts = demo.facts()
    _sign_in(page, facts)
    expect(page.get_by_role("heading", name="Catalog")).to_be_visible()
    assert axe(page) == []
    page.get_by_role("button", name="Order one Teapot").click()
    expect(page.get_by_role("cell", name="Teapot")).to_be_visible()

    started = time.monotonic()
    _admin(facts, "POST", "users/alice/block")
    try:
        expect(page.get_by_role("status")).to_have_text(
            "You were signed out: your session has ended.", timeout=5_000
        )
        thrown_out = time.monotonic() - started
    finally:
        _admin(facts, "POST", "users/alice/unblock")
    print(f"block -> web app signed alice out in {thrown_out * 1000:.0f} ms")
    assert thrown_out < 3.0
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()


def test_sign_out_ends_the_single_sign_on_too(demo: DemoProcess, page: Page) -> None:
    facts = demo.facts()
    _sign_in(page, facts)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    assert page.url.rstrip("/") == facts["WEBAPP_URL"]
    page.get_by_role("link", name="Sign in").click()
    expect(page.get_by_label("Password")).to_be_visible()  # no SSO session left


def test_alice_sets_up_an_authenticator_app_and_a_passkey_then_signs_in_with_the_passkey(
    demo: DemoProcess, context: BrowserContext, page: Page
) -> None:
    facts = demo.facts()
    # The demo's URLs name localhost: a browser offers passkeys to no IP address.
    assert facts["AUTHMESH_ISSUER"].startswith("http://localhost:")
    virtual_authenticator(context, page)
    _sign_in(page, facts)
    try:
        page.get_by_role("link", name="My account").click()
        expect(page.get_by_role("heading", name="My account", level=1)).to_be_visible()
        page.get_by_role("link", name="Set up two-step sign-in").click()
        expect(page.get_by_role("heading", name="Sign-in security")).to_be_visible()
        page.get_by_role("link", name="Set up an authenticator app").click()
        _, codes = enrol_totp_on_page(page)
        assert len(codes) == 10
        page.get_by_role("link", name="Back to security settings").click()
        page.get_by_role("link", name="Add a passkey").click()
        page.get_by_label("Name for this passkey").fill("laptop")
        page.get_by_label("Let me sign in with this passkey alone").check()
        page.get_by_role("button", name="Create the passkey").click()
        expect(page.get_by_text("laptop", exact=True)).to_be_visible()
        expect(page.get_by_text("signs in without a password")).to_be_visible()

        page.goto(facts["WEBAPP_URL"])
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("link", name="Sign in")).to_be_visible()
        page.get_by_role("link", name="Sign in").click()
        page.get_by_role("button", name="Use a passkey instead").click()
        page.get_by_role("button", name="Use a passkey").click()
        expect(page.get_by_text("Signed in as")).to_contain_text("alice")
        expect(page.get_by_role("heading", name="Catalog")).to_be_visible()
        logins = _admin(
            facts, "GET", "audit", params={"action": "login", "subject": "alice"}
        ).json()["events"]
        amr = set(logins[0]["details"]["amr"])
        assert {"hwk", "user", "mfa"} <= amr and "pwd" not in amr
    finally:
        # alice signs in with her password again for the other tests (and the walkthrough).
        reset = _admin(facts, "DELETE", "users/alice/mfa")
    assert reset.json()["factors_removed"] == 2  # the app and the passkey
