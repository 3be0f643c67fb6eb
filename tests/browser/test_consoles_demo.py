"""The consoles on the running demo: an admin blocks alice in the admin console and the
orders and catalog services refuse her token within a second.

The pictures of the README are taken here: set ``AUTHMESH_SCREENSHOTS=docs`` to write
them into the repository (``docs/console-*.png``); otherwise they go to a temporary
folder, so a test run leaves the tree alone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from support.demo_process import DemoProcess

BOUND = 1.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    process = DemoProcess.in_folder(tmp_path_factory.mktemp("demo-consoles"))
    process.start()
    yield process
    process.stop()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where the screenshots go."""
    folder = os.environ.get("AUTHMESH_SCREENSHOTS")
    return Path(folder) if folder else tmp_path


def _sign_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def _alice_token(facts: dict[str, str]) -> str:
    response = httpx.post(
        f"{facts['AUTHMESH_ISSUER']}/oauth/token",
        data={
            "grant_type": "password",
            "client_id": facts["DEMO_CLIENT_ID"],
            "username": facts["USER_USERNAME"],
            "password": facts["USER_PASSWORD"],
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _refused_by(facts: dict[str, str], token: str) -> set[str]:
    """Which of orders and catalog refuse ``token`` now."""
    bearer = {"Authorization": f"Bearer {token}"}
    refused = set()
    if httpx.get(f"{facts['ORDERS_URL']}/orders", headers=bearer).status_code == 401:
        refused.add("orders")
    catalog = httpx.post(
        f"{facts['CATALOG_URL']}/graphql", json={"query": "{ products { id } }"}, headers=bearer
    )
    if catalog.status_code == 401:
        refused.add("catalog")
    return refused


def _shot(page: Page, path: Path) -> None:
    page.set_viewport_size({"width": 1200, "height": 900})
    page.screenshot(path=str(path), full_page=True)


def _live_view_shows_both_services_got_it(
    page: Page, axe: Callable[[Page], list[str]], shots: Path
) -> None:
    """The live view lists orders and catalog following the feed, each sent the block."""
    back = page.url
    page.get_by_role("link", name="Revocation, live").click()
    followers = page.get_by_role("table", name="Open feed streams, oldest first")
    expect(followers).to_contain_text("orders-svc")
    expect(followers).to_contain_text("catalog-svc")
    newest = page.get_by_role(
        "table", name="The newest revocation events and when each service was sent them"
    ).locator("tbody tr")
    sent = newest.filter(has_text="sub").first.locator("td").last
    expect(sent).to_contain_text("orders-svc")
    expect(sent).to_contain_text("catalog-svc")
    print(f"live view, the block's event: {sent.inner_text()}")
    # The page refreshes itself: a new event shows up without a reload.
    head = int(page.locator('[data-field="head"]').inner_text())
    expect(page.locator('[data-field="now"]')).not_to_have_text(
        page.locator('[data-field="now"]').inner_text(), timeout=3_000
    )
    assert int(page.locator('[data-field="head"]').inner_text()) >= head
    assert axe(page) == []
    _shot(page, shots / "console-live.png")
    page.goto(back)


def test_an_admin_blocks_alice_in_the_console_and_both_services_refuse_her(
    demo: DemoProcess, chromium: Browser, axe: Callable[[Page], list[str]], shots: Path
) -> None:
    facts = demo.facts()
    token = _alice_token(facts)
    assert _refused_by(facts, token) == set()

    alice = chromium.new_context()
    admin = chromium.new_context()
    try:
        mine = alice.new_page()
        mine.goto(f"{facts['AUTHMESH_ISSUER']}/account")
        _sign_in(mine, facts["USER_USERNAME"], facts["USER_PASSWORD"])
        expect(mine.get_by_role("heading", name="My account", level=1)).to_be_visible()
        assert axe(mine) == []
        _shot(mine, shots / "console-account.png")

        page = admin.new_page()
        page.goto(f"{facts['AUTHMESH_ISSUER']}/admin")
        _sign_in(page, facts["ADMIN_USERNAME"], facts["ADMIN_PASSWORD"])
        expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
        _shot(page, shots / "console-admin-users.png")
        page.get_by_role("link", name=facts["USER_USERNAME"], exact=True).click()
        try:
            page.get_by_role("button", name="Block").click()
            expect(page.get_by_role("status")).to_contain_text("blocked")
            started = time.monotonic()
            refused: set[str] = set()
            while refused != {"orders", "catalog"} and time.monotonic() - started < 5:
                refused = _refused_by(facts, token)
            took = time.monotonic() - started
            print(f"console block -> refused by orders and catalog in {took * 1000:.0f} ms")
            assert refused == {"orders", "catalog"}
            assert took < BOUND
            mine.reload()  # alice's console session ended with the block
            expect(mine.get_by_label("Password")).to_be_visible()
            _live_view_shows_both_services_got_it(page, axe, shots)
        finally:
            page.get_by_role("button", name="Unblock").click()
            expect(page.get_by_role("status")).to_have_text("The user may sign in again.")
        _shot(page, shots / "console-admin-user.png")
    finally:
        alice.close()
        admin.close()
