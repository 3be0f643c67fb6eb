"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, axe-core for a11y.

The browser is the system's (``/usr/bin/chromium``, or ``AUTHMESH_CHROMIUM``):
Playwright's own browser download is not used. axe-core comes from npm
(``make test`` installs it into the virtualenv).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

CHROMIUM = os.environ.get("AUTHMESH_CHROMIUM", "/usr/bin/chromium")
AXE = Path(
    os.environ.get(
        "AUTHMESH_AXE",
        Path(__file__).resolve().parents[2] / ".venv/axe/node_modules/axe-core/axe.min.js",
    )
)
# Without these, Chromium reaches for Google's services, which this sandbox refuses.
_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One headless Chromium per test module.

    Not per session: Playwright's sync API keeps an event loop marked as running in
    this thread while it is open, and later modules' ``asyncio.run`` would refuse it.
    """
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (see .ci/run)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) per test."""
    ctx = chromium.new_context()
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Page]:
    """A tab; a screenshot of it is saved when the test fails."""
    tab = context.new_page()
    yield tab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        shot = tmp_path / "failure.png"
        tab.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failure: {shot}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if call.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


@pytest.fixture(scope="session")
def axe() -> Callable[[Page], list[str]]:
    """``axe(page)``: axe-core's serious and critical violations on the page, as lines.

    axe is evaluated through the DevTools protocol, which the pages' strict CSP
    (no script at all) does not govern.
    """
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing at {AXE}: run make test (it installs it with npm)")
    source = AXE.read_text()

    def run(page: Page) -> list[str]:
        page.evaluate(source)
        results = page.evaluate("async () => await axe.run(document)")
        return [
            f"{v['id']} ({v['impact']}): {v['help']}"
            for v in results["violations"]
            if v["impact"] in ("serious", "critical")
        ]

    return run
