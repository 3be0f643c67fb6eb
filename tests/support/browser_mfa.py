"""Steps of the multi-factor browser tests: Chromium's virtual authenticator, and an
authenticator app set up on the enrolment page with a code computed here."""

from __future__ import annotations

from typing import Any

import pyotp
from playwright.sync_api import BrowserContext, Page, expect

__all__ = ["enrol_totp_on_page", "virtual_authenticator"]


def virtual_authenticator(context: BrowserContext, page: Page) -> tuple[Any, str]:
    """A platform authenticator with user verification, on the DevTools protocol; the
    CDP session and the authenticator's id."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    made = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, str(made["authenticatorId"])


def enrol_totp_on_page(page: Page) -> tuple[str, list[str]]:
    """Read the key off the enrolment page, type its current code; the key and the
    recovery codes shown."""
    secret = page.locator("code.secret").inner_text().replace(" ", "")
    page.get_by_label("6-digit code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    codes = page.get_by_role("list", name="Recovery codes").locator("code").all_inner_texts()
    return secret, codes
