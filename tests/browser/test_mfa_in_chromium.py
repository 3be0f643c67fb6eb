"""Multi-factor sign-in in Chromium: an authenticator app (codes computed here), a
recovery code, passkeys on Chromium's virtual authenticator (DevTools WebAuthn domain),
policy-forced enrolment, and a service that answers insufficient_user_authentication
sending the user back for a second factor (RFC 9470)."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
import pytest
from fastapi import Depends, FastAPI
from playwright.sync_api import BrowserContext, Page, expect

from authmesh.service import Principal, ServiceConfig
from authmesh.service.fastapi import install, require
from authmesh.testing.servers import UvicornThread
from support.browser_mfa import enrol_totp_on_page, virtual_authenticator
from support.challenges import parse_challenge
from support.databases import db_target
from support.harness import Api, claims_of, launch
from support.oidc_flow import Pkce, register_browser_clients


class _AppPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>app</title><h1>app</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AppPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    # WebAuthn needs a domain for its RP ID: an IP address is refused by browsers.
    port = _free_port()
    with db_target("sqlite", tmp_path_factory.mktemp("mfa-browser")) as target:
        server = launch(
            target, port=port, issuer=f"http://localhost:{port}", mfa_required_roles=["ops"]
        )
        register_browser_clients(server)
        yield server
        server.close()
        server.server.stop()


@pytest.fixture(scope="module")
def service(api: Api) -> Iterator[str]:
    """An orders service whose payouts need a two-factor sign-in of the last 5 minutes."""
    app = FastAPI()
    install(
        app,
        ServiceConfig(
            issuer=api.url,
            audience="orders",
            client_id="orders-svc",
            client_secret=api.service_secret,
            allow_insecure_http=True,
        ),
    )

    @app.post("/payouts")
    async def payout(user: Principal = Depends(require(acr="mfa", max_age=300))) -> dict[str, Any]:
        return {"paid_by": user.subject, "acr": user.acr}

    server = UvicornThread(app).start()
    yield server.url
    server.stop()


def _authorize_url(api: Api, pkce: Pkce, redirect_uri: str, **extra: str) -> str:
    query = {
        "response_type": "code",
        "client_id": "spa",
        "redirect_uri": redirect_uri,
        "scope": "openid profile orders:read",
        "state": "st-1",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return f"{api.url}/authorize?{urlencode(query)}"


def _landed(page: Page, redirect_uri: str) -> str:
    page.wait_for_url(re.compile("^" + re.escape(redirect_uri) + r"\?"))
    return parse_qs(urlsplit(page.url).query)["code"][0]


def _tokens(api: Api, pkce: Pkce, code: str, redirect_uri: str) -> dict[str, Any]:
    response = api.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": pkce.verifier,
            "client_id": "spa",
        }
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _password(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def _next_code(secret: str) -> str:
    """The code of the next time step: accepted (one step of drift) and not yet used."""
    return pyotp.TOTP(secret).at(int(time.time()) + 30)


def test_totp_enrolment_then_sign_in_then_a_recovery_code(
    api: Api, app_url: str, context: BrowserContext, page: Page, axe: Callable[[Page], list[str]]
) -> None:
    name, password = api.new_user()
    page.goto(f"{api.url}/account/security")
    _password(page, name, password)
    expect(page.get_by_role("heading", name="Sign-in security")).to_be_visible()
    assert axe(page) == []
    page.get_by_role("link", name="Set up an authenticator app").click()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    assert axe(page) == []
    secret, codes = enrol_totp_on_page(page)
    assert len(codes) == 10
    assert axe(page) == []

    context.clear_cookies()
    callback = f"{app_url}/callback"
    pkce = Pkce.make()
    page.goto(_authorize_url(api, pkce, callback))
    _password(page, name, password)
    expect(page.get_by_role("heading", name="Confirm it’s you")).to_be_visible()
    assert axe(page) == []
    page.get_by_label("Code from your authenticator app").fill("000000")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_contain_text("That code did not work")
    page.get_by_label("Code from your authenticator app").fill(_next_code(secret))
    page.get_by_role("button", name="Verify").click()
    tokens = _tokens(api, pkce, _landed(page, callback), callback)
    assert claims_of(tokens["id_token"])["acr"] == "mfa"

    context.clear_cookies()
    pkce = Pkce.make()
    page.goto(_authorize_url(api, pkce, callback))
    _password(page, name, password)
    page.get_by_label("Code from your authenticator app").fill(codes[0])
    page.keyboard.press("Enter")
    tokens = _tokens(api, pkce, _landed(page, callback), callback)
    assert "otp" in claims_of(tokens["access_token"])["amr"]


def test_passkey_registration_then_passwordless_and_second_factor_sign_in(
    api: Api, app_url: str, context: BrowserContext, page: Page, axe: Callable[[Page], list[str]]
) -> None:
    cdp, authenticator = virtual_authenticator(context, page)
    name, password = api.new_user()
    page.goto(f"{api.url}/account/security")
    _password(page, name, password)
    page.get_by_role("link", name="Add a passkey").click()
    assert axe(page) == []
    page.get_by_label("Name for this passkey").fill("virtual key")
    page.get_by_label("Let me sign in with this passkey alone").check()
    page.get_by_role("button", name="Create the passkey").click()
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    page.get_by_role("link", name="Back to security settings").click()
    expect(page.get_by_text("virtual key", exact=True)).to_be_visible()
    assert "signs in without a password" in page.content()

    # Passwordless: the passkey alone.
    context.clear_cookies()
    callback = f"{app_url}/callback"
    pkce = Pkce.make()
    page.goto(_authorize_url(api, pkce, callback))
    page.get_by_role("button", name="Use a passkey instead").click()
    expect(page.get_by_role("heading", name="Sign in with a passkey")).to_be_visible()
    assert axe(page) == []
    page.get_by_role("button", name="Use a passkey").click()
    tokens = _tokens(api, pkce, _landed(page, callback), callback)
    claims = claims_of(tokens["id_token"])
    assert claims["acr"] == "mfa" and "user" in claims["amr"]
    assert claims["preferred_username"] == name

    # Second factor after the password.
    context.clear_cookies()
    pkce = Pkce.make()
    page.goto(_authorize_url(api, pkce, callback))
    _password(page, name, password)
    page.get_by_role("button", name="Use a passkey").click()
    tokens = _tokens(api, pkce, _landed(page, callback), callback)
    assert {"pwd", "mfa"} <= set(claims_of(tokens["id_token"])["amr"])
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert (
        len(credentials["credentials"]) == 1
        and credentials["credentials"][0]["isResidentCredential"]
    )


def test_policy_takes_an_operator_to_enrolment(
    api: Api, app_url: str, page: Page, axe: Callable[[Page], list[str]]
) -> None:
    name, password = api.new_user("ops")
    callback = f"{app_url}/callback"
    pkce = Pkce.make()
    page.goto(_authorize_url(api, pkce, callback))
    _password(page, name, password)
    expect(page.get_by_text("Your account must use a second factor")).to_be_visible()
    assert axe(page) == []
    enrol_totp_on_page(page)
    page.get_by_role("button", name="I saved them, continue").click()
    tokens = _tokens(api, pkce, _landed(page, callback), callback)
    assert claims_of(tokens["access_token"])["acr"] == "mfa"


def test_a_service_asks_for_a_second_factor_and_gets_it(
    api: Api, app_url: str, service: str, page: Page
) -> None:
    name, password = api.new_user()
    callback = f"{app_url}/callback"
    pkce = Pkce.make()
    page.goto(_authorize_url(api, pkce, callback))
    _password(page, name, password)
    weak = _tokens(api, pkce, _landed(page, callback), callback)["access_token"]

    refused = httpx.post(f"{service}/payouts", headers={"Authorization": f"Bearer {weak}"})
    assert refused.status_code == 401
    challenge = parse_challenge(refused.headers["www-authenticate"])
    assert challenge["error"] == "insufficient_user_authentication"

    # The client sends the user back with what the challenge asked for.
    pkce = Pkce.make()
    page.goto(
        _authorize_url(
            api, pkce, callback, acr_values=challenge["acr_values"], max_age=challenge["max_age"]
        )
    )
    # No factor yet: the user sets one up on the way (no password asked again).
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    enrol_totp_on_page(page)
    page.get_by_role("button", name="I saved them, continue").click()
    strong = _tokens(api, pkce, _landed(page, callback), callback)["access_token"]
    paid = httpx.post(f"{service}/payouts", headers={"Authorization": f"Bearer {strong}"})
    assert paid.status_code == 200 and paid.json()["acr"] == "mfa"
