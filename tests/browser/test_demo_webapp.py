"""The demo as a user meets it: alice signs in to the web app in a browser, is thrown out
within about a second when an admin blocks her, and signs out."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from support.demo_process import DemoProcess


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    process = DemoProcess.in_folder(tmp_path_factory.mktemp("demo-web"))
    process.start()
    yield process
    process.stop()


def _admin(facts: dict[str, str], action: str, username: str = "alice") -> None:
    token = httpx.post(
        f"{facts['AUTHMESH_ISSUER']}/oauth/token",
        data={
            "grant_type": "password",
            "client_id": facts["DEMO_CLIENT_ID"],
            "username": facts["ADMIN_USERNAME"],
            "password": facts["ADMIN_PASSWORD"],
        },
    ).json()["access_token"]
    response = httpx.post(
        f"{facts['AUTHMESH_ISSUER']}/admin/users/{username}/{action}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text


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
    _admin(facts, "block")
    try:
        expect(page.get_by_role("status")).to_have_text(
            "You were signed out: your session has ended.", timeout=5_000
        )
        thrown_out = time.monotonic() - started
    finally:
        _admin(facts, "unblock")
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
