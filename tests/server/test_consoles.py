"""The web consoles over HTTP: sign-in through the browser flow, authorization, CSRF,
the account page's sessions, and the admin console's actions and their audit trail."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from authmesh.server.console import sign_in as console_sign_in
from authmesh.testing import wait_for
from support.console import ConsoleClient, csrf_of
from support.harness import ADMIN, Api, basic
from support.oidc_flow import PARTNER, Browser, redirect_query, register_browser_clients

# Every admin page, and every admin action with a body that would work for an admin.
ADMIN_PAGES = [
    "/admin",
    "/admin/console/users",
    "/admin/console/users/alice",
    "/admin/console/clients",
    "/admin/console/clients/web",
    "/admin/console/keys",
    "/admin/console/audit",
    "/admin/console/audit/export?format=csv",
    "/admin/console/live",
    "/admin/console/live.json",
]
ADMIN_ACTIONS = [
    ("/admin/console/users", {"username": "eve-made", "password": "long-enough-pw-1"}),
    ("/admin/console/users/alice/roles", {"roles": "user admin"}),
    ("/admin/console/users/alice/block", {}),
    ("/admin/console/users/alice/unblock", {}),
    ("/admin/console/users/alice/logout", {}),
    ("/admin/console/users/alice/unlock", {}),
    ("/admin/console/users/alice/password", {"password": "reset-by-eve-1"}),
    ("/admin/console/clients", {"client_id": "eve-client", "grant_client_credentials": "on"}),
    ("/admin/console/clients/web/edit", {"grant_password": "on"}),
    ("/admin/console/clients/orders-svc/rotate", {}),
    ("/admin/console/clients/orders-svc/delete", {}),
    ("/admin/console/keys/rotate", {}),
]


@pytest.fixture
def console(shared: Api) -> Iterator[ConsoleClient]:
    client = ConsoleClient(shared)
    yield client
    client.close()


@pytest.fixture
def admin_console(shared: Api) -> Iterator[ConsoleClient]:
    """A console signed in as a fresh admin of this test."""
    client = ConsoleClient(shared)
    name, password = shared.new_user("admin", "user")
    client.sign_in(name, password, path="/admin")
    client.username = name  # type: ignore[attr-defined]
    yield client
    client.close()


def _audit(api: Api, **filters: str) -> list[dict[str, object]]:
    response = api.admin("GET", "/admin/audit", params=filters)
    assert response.status_code == 200, response.text
    events: list[dict[str, object]] = response.json()["events"]
    return events


def test_a_console_page_signs_in_through_the_authorization_endpoint(
    shared: Api, console: ConsoleClient
) -> None:
    first = console.http.get("/account")
    assert first.status_code == 303
    assert first.headers["location"].startswith(f"{shared.url}/console/signin")
    to_authorize = console.http.get(first.headers["location"])
    assert to_authorize.status_code == 303
    parts = urlsplit(to_authorize.headers["location"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.path == "/authorize"
    assert query["client_id"] == "authmesh-console"
    assert query["redirect_uri"] == f"{shared.url}/console/callback"
    assert query["code_challenge_method"] == "S256" and query["response_type"] == "code"
    assert len(query["state"]) >= 20

    name, password = shared.new_user()
    page = console.sign_in(name, password)
    assert page.status_code == 200 and "<h1>My account</h1>" in page.text
    assert name in page.text
    cookie = next(c for c in console.http.cookies.jar if c.name == "authmesh_console")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.path == "/"
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text


def test_a_forged_or_replayed_callback_opens_no_session(
    shared: Api, console: ConsoleClient
) -> None:
    no_pending = console.http.get("/console/callback", params={"code": "x", "state": "y"})
    assert no_pending.status_code == 400 and "not started here" in no_pending.text
    console.http.get("/console/signin", params={"next": "/account"})
    wrong_state = console.http.get("/console/callback", params={"code": "x", "state": "y"})
    assert wrong_state.status_code == 400
    assert not any(c.name == "authmesh_console" for c in console.http.cookies.jar)


def test_sign_in_only_returns_to_console_pages(shared: Api, console: ConsoleClient) -> None:
    for evil in ("https://evil.example/", "//evil.example/x", "/account/../..//evil", "/login"):
        start = console.http.get("/console/signin", params={"next": evil})
        assert start.status_code == 303
    name, password = shared.new_user()
    console.http.cookies.clear()
    console.http.get("/console/signin", params={"next": "https://evil.example/"})
    page = console.sign_in(name, password)  # a fresh start with /account
    assert str(page.url).endswith("/account")


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_a_non_admin_gets_403_on_every_admin_page(
    shared: Api, console: ConsoleClient, path: str
) -> None:
    console.sign_in(*shared.new_user())
    response = console.http.get(path)
    assert response.status_code == 403, (path, response.status_code)
    assert "admin role" in response.text


@pytest.mark.parametrize(("path", "data"), ADMIN_ACTIONS, ids=[a[0] for a in ADMIN_ACTIONS])
def test_a_non_admin_gets_403_on_every_admin_action(
    shared: Api, console: ConsoleClient, path: str, data: dict[str, str]
) -> None:
    console.sign_in(*shared.new_user())
    before = shared.admin("GET", "/admin/users/alice").json()
    response = console.post(path, data)
    assert response.status_code == 403, (path, response.status_code)
    assert shared.admin("GET", "/admin/users/alice").json() == before
    assert shared.admin("GET", "/admin/users/eve-made").status_code == 404


@pytest.mark.parametrize("path", ["/admin/console/users", "/account"])
def test_without_a_session_pages_send_to_sign_in(
    shared: Api, console: ConsoleClient, path: str
) -> None:
    response = console.http.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"{shared.url}/console/signin?next=")
    posted = console.http.post("/admin/console/users/alice/block", data={"csrf_token": "x"})
    assert posted.status_code == 303 and "/console/signin" in posted.headers["location"]


def test_csrf_less_posts_are_refused(shared: Api, admin_console: ConsoleClient) -> None:
    name, _ = shared.new_user()
    no_token = admin_console.post(f"/admin/console/users/{name}/block", {}, csrf=False)
    assert no_token.status_code == 403 and "not sent from this site" in no_token.text
    forged = admin_console.http.post(
        f"/admin/console/users/{name}/block", data={"csrf_token": "0" * 64}
    )
    assert forged.status_code == 403
    assert shared.admin("GET", f"/admin/users/{name}").json()["blocked"] is False
    account = admin_console.post("/account/sessions/end-all", {}, csrf=False)
    assert account.status_code == 403
    assert admin_console.http.get("/account").status_code == 200  # still signed in


def test_another_users_sessions_are_neither_shown_nor_ended(shared: Api) -> None:
    alice, bob = ConsoleClient(shared), ConsoleClient(shared)
    try:
        alice.sign_in(*shared.new_user())
        bob_page = bob.sign_in(*shared.new_user())
        bob_sids = set(re.findall(r'name="session_id" value="([^"]+)"', bob_page.text))
        assert bob_sids
        alice_page = alice.http.get("/account")
        assert not bob_sids & set(re.findall(r'name="session_id" value="([^"]+)"', alice_page.text))
        for sid in bob_sids:
            assert alice.post("/account/sessions/end", {"session_id": sid}).status_code == 303
        assert bob.http.get("/account").status_code == 200  # bob is still signed in
    finally:
        alice.close()
        bob.close()


def test_signing_out_one_session_revokes_its_tokens_through_the_feed(
    shared: Api, console: ConsoleClient
) -> None:
    name, password = shared.new_user()
    tokens = shared.login(name, password)  # a password-grant session elsewhere
    page = console.sign_in(name, password)
    sids = re.findall(r'name="session_id" value="([^"]+)"', page.text)
    assert len(sids) == 2
    cursor = shared.latest_cursor()
    other = next(s for s in sids if s != _console_browser_sid(page.text))
    done = console.post("/account/sessions/end", {"session_id": other})
    assert done.status_code == 303 and "done=session_ended" in done.headers["location"]
    assert ("sid", other) in shared.events(cursor)
    assert shared.introspect(tokens["access_token"])["active"] is False
    assert console.http.get("/account").status_code == 200  # this device still signed in


def _console_browser_sid(text: str) -> str:
    row = text.split("this device", 1)[1]
    found = re.search(r'name="session_id" value="([^"]+)"', row)
    assert found
    return found.group(1)


def test_sign_out_everywhere_ends_every_session(shared: Api, console: ConsoleClient) -> None:
    name, password = shared.new_user()
    tokens = shared.login(name, password)
    console.sign_in(name, password)
    done = console.post("/account/sessions/end-all")
    assert done.status_code == 200 and "signed out" in done.text
    assert shared.introspect(tokens["access_token"])["active"] is False
    assert console.http.get("/account").status_code == 303


def test_password_change_needs_the_current_password(shared: Api, console: ConsoleClient) -> None:
    name, password = shared.new_user()
    console.sign_in(name, password)
    form = {"new_password": "brand-new-pass-1", "confirm_password": "brand-new-pass-1"}
    wrong = console.post("/account/change-password", {**form, "current_password": "nope-nope"})
    assert wrong.status_code == 400 and "current password is wrong" in wrong.text
    mismatch = console.post(
        "/account/change-password",
        {**form, "current_password": password, "confirm_password": "other-pass-12"},
    )
    assert mismatch.status_code == 400 and "do not match" in mismatch.text
    done = console.post("/account/change-password", {**form, "current_password": password})
    assert done.status_code == 200 and "Password changed" in done.text
    assert console.http.get("/account").status_code == 303  # every session ended
    shared.login(name, "brand-new-pass-1")


def test_admin_actions_are_audited_with_the_acting_admin(
    shared: Api, admin_console: ConsoleClient
) -> None:
    name, password = shared.new_user()
    tokens = shared.login(name, password)
    back = f"/admin/console/users/{name}"
    blocked = admin_console.post(f"/admin/console/users/{name}/block", {"back": back})
    assert blocked.status_code == 303 and "done=blocked" in blocked.headers["location"]
    assert shared.introspect(tokens["access_token"])["active"] is False
    roles = admin_console.post(f"/admin/console/users/{name}/roles", {"roles": "user auditor"})
    assert roles.status_code == 303
    assert shared.admin("GET", f"/admin/users/{name}").json()["roles"] == ["auditor", "user"]
    page = admin_console.http.get(back)
    assert page.status_code == 200 and "blocked" in page.text and "auditor" in page.text
    for action in ("unblock", "unlock", "logout"):
        assert admin_console.post(f"/admin/console/users/{name}/{action}").status_code == 303
    actor = admin_console.username  # type: ignore[attr-defined]
    events = _audit(shared, subject=name, actor=actor)
    assert {e["action"] for e in events} >= {
        "block",
        "role_change",
        "unblock",
        "unlock",
        "force_logout",
    }


def test_admin_creates_searches_and_pages_users(shared: Api, admin_console: ConsoleClient) -> None:
    made = admin_console.post(
        "/admin/console/users",
        {
            "username": "zz_search.me",
            "email": "Search.Me@example.com",
            "password": "initial-pass-1",
            "roles": "user, reports",
        },
    )
    if made.status_code == 400:  # the other backend's run made it already
        assert "already exists" in made.text
    else:
        assert made.status_code == 303
    found = admin_console.http.get("/admin/console/users", params={"q": "SEARCH.me"})
    assert "zz_search.me" in found.text and "1 user matching" in found.text
    none = admin_console.http.get("/admin/console/users", params={"q": "zz_%"})
    assert "0 users" in none.text  # % is a character here, not a wildcard
    weak = admin_console.post("/admin/console/users", {"username": "weak", "password": "x"})
    assert weak.status_code == 400 and 'role="alert"' in weak.text
    for _ in range(3):
        shared.new_user()
    page1 = admin_console.http.get("/admin/console/users", params={"page": 1})
    assert "Next page" in page1.text or "Page 1 of 1" in page1.text


def test_a_password_reset_makes_the_user_choose_one_at_next_sign_in(
    shared: Api, admin_console: ConsoleClient, console: ConsoleClient
) -> None:
    name, _ = shared.new_user()
    reset = admin_console.post(
        f"/admin/console/users/{name}/password", {"password": "temporary-pass-1"}
    )
    assert reset.status_code == 303
    refused = shared.password_grant(name, "temporary-pass-1")  # not on the command line
    assert refused.status_code == 400 and "browser" in refused.json()["error_description"]
    page = console.follow(console.http.get("/account"))
    fields = dict(re.findall(r'name="(csrf_token|request)" value="([^"]*)"', page.text))
    asked = console.http.post(
        "/login", data={**fields, "username": name, "password": "temporary-pass-1"}
    )
    assert asked.status_code == 200 and "Choose a new password" in asked.text
    fields = dict(re.findall(r'name="(csrf_token|request)" value="([^"]*)"', asked.text))
    new = {"new_password": "my-own-pass-12", "confirm_password": "my-own-pass-12"}
    done = console.follow(console.http.post("/login/new-password", data={**fields, **new}))
    assert done.status_code == 200 and "<h1>My account</h1>" in done.text
    replay = console.http.post("/login/new-password", data={**fields, **new})
    assert replay.status_code == 400
    shared.login(name, "my-own-pass-12")
    assert shared.password_grant(name, "temporary-pass-1").status_code == 400


def test_client_secret_is_shown_once_and_rotates(shared: Api, admin_console: ConsoleClient) -> None:
    client_id = f"svc-{admin_console.username}"  # type: ignore[attr-defined]
    made = admin_console.post(
        "/admin/console/clients",
        {"client_id": client_id, "grant_client_credentials": "on", "audiences": "orders"},
    )
    assert made.status_code == 200, made.text
    secret = re.search(r'data-testid="secret">([^<]+)<', made.text)
    assert secret
    first = secret.group(1)
    ok = shared.token(
        {"grant_type": "client_credentials"}, headers={"Authorization": basic(client_id, first)}
    )
    assert ok.status_code == 200
    for path in ("/admin/console/clients", f"/admin/console/clients/{client_id}"):
        assert first not in admin_console.http.get(path).text
    rotated = admin_console.post(f"/admin/console/clients/{client_id}/rotate")
    second = re.search(r'data-testid="secret">([^<]+)<', rotated.text)
    assert second and second.group(1) != first
    old = shared.token(
        {"grant_type": "client_credentials"}, headers={"Authorization": basic(client_id, first)}
    )
    assert old.status_code == 401
    edited = admin_console.post(
        f"/admin/console/clients/{client_id}/edit",
        {
            "grant_authorization_code": "on",
            "redirect_uris": "https://app.example/cb https://app.example/cb2",
            "third_party": "on",
        },
    )
    assert edited.status_code == 303
    view = next(
        c
        for c in shared.admin("GET", "/admin/clients").json()["clients"]
        if c["client_id"] == client_id
    )
    assert view["redirect_uris"] == ["https://app.example/cb", "https://app.example/cb2"]
    assert view["grant_types"] == ["authorization_code"] and view["first_party"] is False
    bad = admin_console.post(
        f"/admin/console/clients/{client_id}/edit",
        {"grant_authorization_code": "on", "redirect_uris": "http://evil.example/cb"},
    )
    assert bad.status_code == 400 and "redirect URI" in bad.text
    gone = admin_console.post(f"/admin/console/clients/{client_id}/delete")
    assert gone.status_code == 303
    assert admin_console.http.get(f"/admin/console/clients/{client_id}").status_code == 404
    actor = admin_console.username  # type: ignore[attr-defined]
    done = {e["action"] for e in _audit(shared, subject=client_id, actor=actor)}
    assert done == {"client_create", "client_secret_rotate", "client_update", "client_delete"}


def test_keys_rotate_now(shared: Api, admin_console: ConsoleClient) -> None:
    before = admin_console.http.get("/admin/console/keys").text.count("<code>")
    done = admin_console.post("/admin/console/keys/rotate")
    assert done.status_code == 303
    page = admin_console.http.get("/admin/console/keys")
    assert page.text.count("<code>") == before + 1
    assert "private" not in page.text and '"d"' not in page.text
    actor = admin_console.username  # type: ignore[attr-defined]
    assert [e["action"] for e in _audit(shared, action="key_rotate", actor=actor)] == ["key_rotate"]


def test_audit_filters_and_exports(shared: Api, admin_console: ConsoleClient) -> None:
    name, _ = shared.new_user()
    admin_console.post(f"/admin/console/users/{name}/block")
    page = admin_console.http.get(
        "/admin/console/audit", params={"action": "block", "subject": name}
    )
    assert page.status_code == 200 and page.text.count("<td>block</td>") == 1
    as_csv = admin_console.http.get(
        "/admin/console/audit/export", params={"format": "csv", "subject": name}
    )
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert {r["action"] for r in rows} >= {"user_create", "block"}
    lines = admin_console.http.get(
        "/admin/console/audit/export", params={"format": "jsonl", "subject": name}
    )
    events = [json.loads(line) for line in lines.text.splitlines()]
    assert events and all(e["subject"] == name for e in events)
    assert "attachment" in lines.headers["content-disposition"]


def test_a_dangerous_action_needs_a_recent_sign_in(
    shared: Api, admin_console: ConsoleClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, _ = shared.new_user()
    monkeypatch.setattr(console_sign_in, "FRESH_SIGN_IN_SECONDS", -1.0)
    back = f"/admin/console/users/{name}"
    stale = admin_console.post(f"{back}/block", {"back": back})
    assert stale.status_code == 303 and "again=1" in stale.headers["location"]
    assert shared.admin("GET", f"/admin/users/{name}").json()["blocked"] is False
    to_authorize = admin_console.http.get(stale.headers["location"])
    assert "prompt=login" in to_authorize.headers["location"]
    login_page = admin_console.http.get(to_authorize.headers["location"])
    assert login_page.status_code == 200 and 'action="/login"' in login_page.text  # not SSO
    csrf_of(admin_console.http.get("/account"))
    assert ADMIN  # the seeded admin is untouched by this test


@pytest.fixture(scope="module")
def partner(shared: Api) -> str:
    """The third-party ``partner`` client (and ``spa``) on the shared server."""
    return register_browser_clients(shared)


def test_a_connected_app_is_listed_and_its_access_removed(
    shared: Api, console: ConsoleClient, partner: str
) -> None:
    name, password = shared.new_user()
    browser = Browser(shared)
    try:
        page = browser.authorize(client_id="partner", redirect_uri=PARTNER)
        consent = browser.submit_login(page, name, password)
        code = redirect_query(browser.submit_consent(consent, "allow"))["code"]
        tokens = browser.exchange(
            code, client_id="partner", redirect_uri=PARTNER, client_secret=partner
        ).json()
    finally:
        browser.close()
    account = console.sign_in(name, password)
    assert "<strong>partner</strong> may" in account.text
    done = console.post("/account/apps/revoke", {"client_id": "partner"})
    assert done.status_code == 303 and "done=app_revoked" in done.headers["location"]
    assert "No third-party app has access" in console.http.get("/account").text
    assert shared.introspect(tokens["access_token"])["active"] is False


@pytest.mark.parametrize(
    "path",
    [
        "/admin/console/users?page=abc",
        "/admin/console/users?page=-3&q=%25%25%5F",
        "/admin/console/users?q=" + "x" * 5000,
        "/admin/console/audit?since=yesterday&until=1e400&before=-1",
        "/admin/console/audit?since=2026-13-45T99:00",
        "/admin/console/audit/export?format=xml",
        "/admin/console/users/%E2%80%AEnobody",
        "/admin/console/clients/no-such-client",
    ],
)
def test_bad_inputs_to_admin_pages_get_a_page_never_a_500(
    admin_console: ConsoleClient, path: str
) -> None:
    response = admin_console.http.get(path)
    assert response.status_code in (200, 400, 404), response.text[:300]
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("/admin/console/users/nobody-here/block", "csrf_token=", "form"),
        ("/admin/console/users/alice/frobnicate", "csrf_token=", "form"),
        ("/admin/console/clients/nope/edit", "csrf_token=", "form"),
        ("/admin/console/users", "\xff\xfe", "form"),
        ("/admin/console/users", '{"username": "x"}', "application/json"),
        ("/account/sessions/end", "csrf_token=&session_id=" + "z" * 3000, "form"),
    ],
)
def test_bad_posts_to_the_consoles_get_a_page_never_a_500(
    admin_console: ConsoleClient, path: str, body: str, content_type: str
) -> None:
    token = csrf_of(admin_console.http.get("/account"))
    content = body.replace("csrf_token=", f"csrf_token={token}").encode("latin-1")
    kind = "application/x-www-form-urlencoded" if content_type == "form" else content_type
    response = admin_console.http.post(path, content=content, headers={"Content-Type": kind})
    assert response.status_code in (303, 400, 403, 404), response.text[:300]
    if response.status_code != 303:
        assert response.headers["content-type"].startswith("text/html")


def test_the_live_page_loads_one_script_file_and_its_json_lists_new_events(
    shared: Api, admin_console: ConsoleClient
) -> None:
    page = admin_console.http.get("/admin/console/live")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    scripts = re.findall(r"<script[^>]*>", page.text)
    assert scripts == ['<script src="/static/live.js" defer>']
    script = admin_console.http.get("/static/live.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    name, _ = shared.new_user()
    admin_console.post(f"/admin/console/users/{name}/block")
    view = admin_console.http.get("/admin/console/live.json").json()
    user_id = shared.user_id(name)
    assert any(e["kind"] == "sub" and e["value"] == user_id for e in view["events"])
    assert view["head"] >= max(e["cursor"] for e in view["events"])


def test_the_live_view_shows_a_follower_and_when_it_was_sent_an_event(
    shared: Api, admin_console: ConsoleClient
) -> None:
    name, _ = shared.new_user()
    replica = f"orders-{name}"
    headers = {"Authorization": shared.service_basic, "Authmesh-Replica": replica}
    with httpx.Client(base_url=shared.url, timeout=5) as client:
        after = {"after": shared.latest_cursor()}  # this test's events only
        with client.stream("GET", "/revocations/stream", headers=headers, params=after) as response:
            assert response.status_code == 200
            lines = response.iter_lines()

            def mine() -> dict[str, object] | None:
                view = admin_console.http.get("/admin/console/live.json").json()
                return next((f for f in view["followers"] if f["replica"] == replica), None)

            wait_for(mine, timeout=5)
            follower = mine()
            assert follower is not None and follower["client_id"] == "orders-svc"
            assert admin_console.post(f"/admin/console/users/{name}/block").status_code == 303
            for line in lines:  # read up to the event: then it was sent
                if line.startswith("id: "):
                    cursor = int(line[4:])
                    break
            view = admin_console.http.get("/admin/console/live.json").json()
            index = next(i for i, f in enumerate(view["followers"]) if f["replica"] == replica)
            event = next(e for e in view["events"] if e["cursor"] == cursor)
            received = event["received_ms"][index]
            assert received is not None and 0 <= received < 5000
            page = admin_console.http.get("/admin/console/live")
            assert replica in page.text and f"+{received} ms" in page.text
