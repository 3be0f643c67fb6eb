"""Alice signs in through a real browser: the sign-in form, SSO, consent, logout, framing."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from authmesh.server import clients
from support.databases import db_target
from support.harness import ALICE, Api, launch
from support.oidc_flow import Pkce, register_browser_clients


class _AppPage(BaseHTTPRequestHandler):
    """Any GET: a placeholder page of the relying party."""

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
    """A relying party on loopback, where the redirects land."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AppPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, app_url: str) -> Iterator[Api]:
    with db_target("sqlite", tmp_path_factory.mktemp("browser")) as target:
        server = launch(target)
        register_browser_clients(server)

        async def register() -> str:
            made = await clients.register_client(
                server.core,
                client_id="reports",
                name="Partner Reports",
                grant_types=["authorization_code"],
                scopes=["orders:read"],
                redirect_uris=[f"{app_url}/reports"],
                first_party=False,
            )
            assert made.secret is not None
            return made.secret

        server.partner_secret = server.server.call(register())  # type: ignore[attr-defined]
        yield server
        server.close()
        server.server.stop()


def _authorize_url(api: Api, pkce: Pkce, redirect_uri: str, client_id: str = "spa") -> str:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid profile orders:read",
        "state": "st-1",
        "nonce": "nonce-1",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    return f"{api.url}/authorize?{urlencode(query)}"


def _landed(page: Page, redirect_uri: str) -> str:
    """Wait until the browser is back at the app; the code it brought."""
    page.wait_for_url(re.compile("^" + re.escape(redirect_uri) + r"\?"))
    query = parse_qs(urlsplit(page.url).query)
    assert query["state"] == ["st-1"]
    return query["code"][0]


def _exchange(api: Api, pkce: Pkce, code: str, redirect_uri: str, **extra: str) -> httpx.Response:
    response = api.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": pkce.verifier,
            "client_id": "spa",
            **extra,
        }
    )
    return response


def _sign_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_alice_signs_in_and_the_app_gets_her_tokens(
    api: Api, app_url: str, context: BrowserContext, page: Page, axe: Callable[[Page], list[str]]
) -> None:
    callback = f"{app_url}/callback"
    pkce = Pkce.make()
    response = page.goto(_authorize_url(api, pkce, callback))
    assert response is not None and response.status == 200
    headers = response.headers
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert axe(page) == []

    _sign_in(page, *ALICE)
    code = _landed(page, callback)

    cookies = {c["name"]: c for c in context.cookies(api.url)}
    session = cookies["authmesh_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    tokens = _exchange(api, pkce, code, callback)
    assert tokens.status_code == 200, tokens.text
    assert tokens.headers["cache-control"] == "no-store"
    assert {"access_token", "id_token", "refresh_token"} <= set(tokens.json())

    # Single sign-on: the next authorization needs no form.
    page.goto(_authorize_url(api, Pkce.make(), callback))
    _landed(page, callback)


def test_a_wrong_password_keeps_her_on_the_page_keyboard_only(
    api: Api, app_url: str, page: Page, axe: Callable[[Page], list[str]]
) -> None:
    callback = f"{app_url}/callback"
    page.goto(_authorize_url(api, Pkce.make(), callback))
    page.keyboard.type("alice")  # the username field has focus on arrival
    page.keyboard.press("Tab")
    page.keyboard.type("not-her-password")
    page.keyboard.press("Enter")

    expect(page.get_by_role("alert")).to_have_text("Invalid username or password.")
    assert page.url == f"{api.url}/login"
    assert axe(page) == []
    _sign_in(page, *ALICE)
    _landed(page, callback)


def test_consent_then_logout(
    api: Api, app_url: str, page: Page, axe: Callable[[Page], list[str]]
) -> None:
    reports = f"{app_url}/reports"
    pkce = Pkce.make()
    page.goto(_authorize_url(api, pkce, reports, client_id="reports"))
    _sign_in(page, *ALICE)
    expect(page.get_by_role("heading", name="Allow Partner Reports access?")).to_be_visible()
    assert axe(page) == []
    page.get_by_role("button", name="Allow").click()
    code = _landed(page, reports)
    tokens = _exchange(
        api,
        pkce,
        code,
        reports,
        client_id="reports",
        client_secret=api.partner_secret,  # type: ignore[attr-defined]
    ).json()

    page.goto(f"{api.url}/logout?" + urlencode({"id_token_hint": tokens["id_token"]}))
    expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
    assert api.introspect(tokens["access_token"]) == {"active": False}
    page.goto(_authorize_url(api, Pkce.make(), f"{app_url}/callback"))
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_logout_without_a_hint_asks_first(api: Api, app_url: str, page: Page) -> None:
    callback = f"{app_url}/callback"
    page.goto(_authorize_url(api, Pkce.make(), callback))
    _sign_in(page, *ALICE)
    _landed(page, callback)
    page.goto(f"{api.url}/logout")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()


def test_another_site_cannot_frame_the_sign_in_page(
    api: Api, app_url: str, context: BrowserContext, page: Page
) -> None:
    url = _authorize_url(api, Pkce.make(), f"{app_url}/callback")
    framing = f'<iframe title="login" src="{url}"></iframe>'
    context.route(
        "https://evil.example/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=framing),
    )
    page.goto("https://evil.example/")
    page.wait_for_load_state("load")
    assert len(page.frames) == 2
    assert page.frames[1].get_by_label("Password").count() == 0
