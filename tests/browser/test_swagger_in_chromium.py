"""Swagger UI in Chromium: served by the server itself, and its "Authorize" gets a token."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from support.databases import db_target
from support.harness import Api, launch


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with db_target("sqlite", tmp_path_factory.mktemp("swagger")) as target:
        server = launch(target)
        yield server
        server.close()
        server.server.stop()


def test_swagger_ui_loads_nothing_from_another_host(api: Api, page: Page) -> None:
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))

    page.goto(f"{api.url}/docs")

    expect(page.get_by_role("button", name="Authorize")).to_be_visible()
    assert hosts == {urlsplit(api.url).netloc}


def test_authorize_with_a_bearer_token_then_call_an_admin_operation(api: Api, page: Page) -> None:
    page.goto(f"{api.url}/docs")
    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".modal-ux")
    expect(dialog).to_contain_text("Flow: password")
    expect(dialog).to_contain_text("Flow: clientCredentials")
    dialog.get_by_role("textbox", name="auth-bearer-value").fill(api.admin_token())
    dialog.get_by_role("button", name="Apply credentials").first.click()
    dialog.get_by_role("button", name="Close").first.click()

    operation = page.locator("#operations-admin-list_users_admin_users_get")
    operation.locator(".opblock-summary-control").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()

    expect(
        operation.locator(".live-responses-table tbody .response-col_status").first
    ).to_have_text("200")
