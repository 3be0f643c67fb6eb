"""The consoles in a real browser: alice's account page, the admin console's pages and
actions, keyboard use, and axe-core finding nothing serious or critical on any page."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from support.databases import db_target
from support.harness import ADMIN, Api, launch


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with db_target("sqlite", tmp_path_factory.mktemp("consoles")) as target:
        server = launch(target)
        yield server
        server.close()
        server.server.stop()


def _sign_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_the_account_page_lists_sessions_and_signs_one_out(
    api: Api, context: BrowserContext, page: Page, axe: Callable[[Page], list[str]]
) -> None:
    name, password = api.new_user()
    elsewhere = api.login(name, password)  # a session on another device
    response = page.goto(f"{api.url}/account")
    assert response is not None
    _sign_in(page, name, password)
    expect(page.get_by_role("heading", name="My account", level=1)).to_be_visible()
    headers = page.request.get(f"{api.url}/account").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    console_cookie = next(c for c in context.cookies(api.url) if c["name"] == "authmesh_console")
    assert console_cookie["httpOnly"] and console_cookie["sameSite"] == "Lax"
    assert axe(page) == []

    rows = page.get_by_role("table", name="Your signed-in sessions").locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="this device")).to_have_count(1)
    rows.filter(has_not_text="this device").get_by_role(
        "button", name=re.compile("Sign out")
    ).click()
    expect(page.get_by_role("status")).to_have_text("That session is signed out.")
    expect(rows).to_have_count(1)
    assert api.introspect(elsewhere["access_token"]) == {"active": False}
    events = page.get_by_role("table", name="Recent security events of your account")
    expect(events).to_contain_text("logout")


def test_the_account_page_works_from_the_keyboard(api: Api, page: Page) -> None:
    name, password = api.new_user()
    page.goto(f"{api.url}/account")
    _sign_in(page, name, password)
    expect(page.get_by_role("heading", name="My account", level=1)).to_be_visible()
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    outline = skip.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline == "solid"  # focus is visible
    page.get_by_label("Current password").focus()
    page.keyboard.type(password)
    page.keyboard.press("Tab")
    page.keyboard.type("a-new-password-1")
    page.keyboard.press("Tab")
    page.keyboard.type("a-new-password-1")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Password changed")).to_be_visible()
    assert api.password_grant(name, "a-new-password-1").status_code == 200


def test_an_admin_manages_users_and_clients(
    api: Api, page: Page, axe: Callable[[Page], list[str]]
) -> None:
    target, _ = api.new_user()
    page.goto(f"{api.url}/admin")
    _sign_in(page, *ADMIN)
    expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
    assert axe(page) == []

    page.get_by_label("Search by name or email").fill(target)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=target).click()
    expect(page.get_by_role("heading", name=f"User {target}")).to_be_visible()
    assert axe(page) == []
    page.get_by_role("button", name="Block").click()
    expect(page.get_by_role("status")).to_contain_text("blocked")
    expect(page.get_by_text("blocked", exact=True)).to_be_visible()
    page.get_by_role("button", name="Unblock").click()
    expect(page.get_by_role("status")).to_have_text("The user may sign in again.")

    page.get_by_role("link", name="Clients").click()
    expect(page.get_by_role("heading", name="Clients", level=1)).to_be_visible()
    assert axe(page) == []
    page.get_by_label("Client id").fill("reports-app")
    page.get_by_label("Redirect URIs", exact=True).fill("https://reports.example/cb")
    page.get_by_role("button", name="Register client").click()
    expect(page.get_by_role("heading", name=re.compile("Client registered"))).to_be_visible()
    secret = page.get_by_test_id("secret").inner_text()
    assert len(secret) >= 32
    assert axe(page) == []
    page.get_by_role("link", name="Go to the client").click()
    assert secret not in page.content()
    assert axe(page) == []

    page.get_by_role("link", name="Signing keys").click()
    expect(page.get_by_role("heading", name="Signing keys")).to_be_visible()
    assert axe(page) == []
    page.get_by_role("link", name="Audit trail").click()
    page.get_by_label("Subject").fill(target)
    page.get_by_role("button", name="Filter").click()
    table = page.get_by_role("table", name="Security events, newest first")
    expect(table).to_contain_text("block")
    expect(table).to_contain_text(ADMIN[0])  # the acting admin
    assert axe(page) == []


def test_a_non_admin_meets_a_403_page(api: Api, page: Page) -> None:
    page.goto(f"{api.url}/admin/console/clients")
    _sign_in(page, *api.new_user())
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.get_by_role("link", name="Clients")).to_have_count(0)


def test_a_reset_password_is_replaced_at_the_next_sign_in(
    api: Api, chromium: Browser, page: Page, axe: Callable[[Page], list[str]]
) -> None:
    target, _ = api.new_user()
    page.goto(f"{api.url}/admin/console/users/{target}")
    _sign_in(page, *ADMIN)
    page.get_by_label("Temporary password").fill("temporary-pass-9")
    page.get_by_role("button", name="Reset password").click()
    expect(page.get_by_role("status")).to_contain_text("must change it")

    user = chromium.new_context()
    try:
        mine = user.new_page()
        mine.goto(f"{api.url}/account")
        _sign_in(mine, target, "temporary-pass-9")
        expect(mine.get_by_role("heading", name="Choose a new password")).to_be_visible()
        assert axe(mine) == []
        mine.get_by_label("New password", exact=True).fill("chosen-by-me-9")
        mine.get_by_label("New password again").fill("chosen-by-me-9")
        mine.get_by_role("button", name="Save and continue").click()
        expect(mine.get_by_role("heading", name="My account", level=1)).to_be_visible()
    finally:
        user.close()
    assert api.password_grant(target, "chosen-by-me-9").status_code == 200
