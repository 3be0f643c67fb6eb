"""CSRF-free by design: nothing authenticates by cookie, so a cross-site request cannot
ride on ambient credentials.

A forged cross-site request can carry the victim's cookies and a simple body
(form-encoded or ``text/plain``), but no ``Authorization`` header. Here the
victim's very tokens sit in every cookie an attacker could hope the browser
sends; the state-changing endpoints of the auth server and of the service must
refuse, and nothing may change.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from support.security_stack import Stack, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(tmp_path_factory.mktemp("csrf")) as stack:
        yield stack


COOKIE_NAMES = ("access_token", "token", "Authorization", "session", "authmesh", "jwt")
CROSS_SITE = {"Origin": "https://evil.example", "Referer": "https://evil.example/page"}


def _cookies(token: str) -> dict[str, str]:
    jar = {name: token for name in COOKIE_NAMES}
    jar["Authorization"] = f"Bearer {token}"
    return jar


@dataclass
class Victim:
    name: str
    password: str
    access: str
    refresh: str


def _victim(stack: Stack, *roles: str) -> Victim:
    name, password = stack.api.new_user(*roles)
    tokens = stack.api.login(name, password)
    return Victim(name, password, tokens["access_token"], tokens["refresh_token"])


def _forged(
    base: str, method: str, path: str, token: str, body: dict[str, Any], kind: str
) -> httpx.Response:
    """The request a cross-site page makes: cookies, a simple body, no Authorization."""
    headers = dict(CROSS_SITE)
    content: bytes | None = None
    params: dict[str, str] = {}
    if kind == "form":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        content = httpx.QueryParams({k: str(v) for k, v in body.items()}).__str__().encode()
    elif kind == "text-plain-json":
        headers["Content-Type"] = "text/plain"
        content = json.dumps(body).encode()
    elif kind == "query-token":  # RFC 6750 §2.3, which leaks tokens into logs: not accepted
        params["access_token"] = token
    elif kind == "form-token":  # RFC 6750 §2.2: not accepted either
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        content = httpx.QueryParams({"access_token": token, **body}).__str__().encode()
    with httpx.Client(base_url=base, cookies=_cookies(token), timeout=15) as client:
        return client.request(method, path, headers=headers, content=content, params=params)


@dataclass(frozen=True)
class Target:
    """A state-changing endpoint and how to tell whether its state changed."""

    method: str
    path: Callable[[Victim], str]
    body: Callable[[Victim], dict[str, Any]]
    unchanged: Callable[[Stack, Victim], bool]
    admin: bool = False
    service: bool = False


def _session_alive(stack: Stack, v: Victim) -> bool:
    return stack.api.userinfo(v.access).status_code == 200


def _password_same(stack: Stack, v: Victim) -> bool:
    return stack.api.password_grant(v.name, v.password).status_code == 200


def _not_blocked(stack: Stack, v: Victim) -> bool:
    return stack.api.admin("GET", f"/admin/users/{v.name}").json()["blocked"] is False


def _no_user(stack: Stack, v: Victim) -> bool:
    return stack.api.admin("GET", f"/admin/users/csrf-{v.name}").status_code == 404


def _no_client(stack: Stack, v: Victim) -> bool:
    clients = stack.api.admin("GET", "/admin/clients").json()["clients"]
    return all(c["client_id"] != f"csrf-{v.name}" for c in clients)


def _roles_same(stack: Stack, v: Victim) -> bool:
    return stack.api.admin("GET", f"/admin/users/{v.name}").json()["roles"] == ["user"]


def _no_order(stack: Stack, v: Victim) -> bool:
    return stack.service.http.get("/orders/count").json()["count"] == 0


TARGETS: dict[str, Target] = {
    "logout": Target("POST", lambda v: "/account/logout", lambda v: {}, _session_alive),
    "logout-all": Target(
        "POST", lambda v: "/account/logout?all=true", lambda v: {}, _session_alive
    ),
    "password-change": Target(
        "POST",
        lambda v: "/account/password",
        lambda v: {"current_password": v.password, "new_password": "csrf-chosen-password-1"},
        _password_same,
    ),
    "admin-block": Target(
        "POST", lambda v: "/admin/users/alice/block", lambda v: {}, lambda s, v: True, admin=True
    ),
    "admin-create-user": Target(
        "POST",
        lambda v: "/admin/users",
        lambda v: {"username": f"csrf-{v.name}", "password": "csrf-password-123", "roles": []},
        _no_user,
        admin=True,
    ),
    "admin-register-client": Target(
        "POST",
        lambda v: "/admin/clients",
        lambda v: {"client_id": f"csrf-{v.name}", "public": True},
        _no_client,
        admin=True,
    ),
    "admin-set-roles": Target(
        "PUT",
        lambda v: "/admin/users/alice/roles",
        lambda v: {"roles": ["admin"]},
        lambda s, v: True,
        admin=True,
    ),
    "service-create-order": Target(
        "POST", lambda v: "/orders", lambda v: {"item": "x"}, _no_order, service=True
    ),
}
KINDS = ["cookies-only", "form", "text-plain-json", "query-token", "form-token"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(TARGETS))
def test_cookie_borne_request_changes_nothing(stack: Stack, name: str, kind: str) -> None:
    target = TARGETS[name]
    victim = _victim(stack, "admin", "user") if target.admin else _victim(stack)
    base = stack.service.url if target.service else stack.api.url
    alice_before = stack.api.admin("GET", "/admin/users/alice").json()
    response = _forged(
        base, target.method, target.path(victim), victim.access, target.body(victim), kind
    )
    assert response.status_code == 401, (response.status_code, response.text)
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert target.unchanged(stack, victim)
    assert stack.api.admin("GET", "/admin/users/alice").json() == alice_before
    if not target.admin:
        assert _session_alive(stack, victim)


def test_no_response_sets_a_cookie(stack: Stack) -> None:
    api, service = stack.api, stack.service
    victim = _victim(stack)
    admin = api.bearer(api.admin_token())
    responses = [
        api.password_grant(victim.name, victim.password),
        api.password_grant(victim.name, "wrong-password-123"),
        api.refresh(victim.refresh),
        api.userinfo(victim.access),
        api.http.get("/admin/users", headers=admin),
        api.http.get("/admin/audit", headers=admin),
        api.http.get("/.well-known/openid-configuration"),
        api.http.get("/.well-known/jwks.json"),
        api.http.get("/healthz"),
        api.http.get("/metrics"),
        api.http.post("/oauth/introspect", data={"token": victim.access}),
        api.revoke(victim.access),
        api.http.post("/account/logout", headers=api.bearer(victim.access)),
        service.me(victim.access),
        service.http.post("/orders"),
    ]
    for response in responses:
        assert "set-cookie" not in response.headers, (response.request.url, response.headers)


def test_cross_origin_reads_are_not_granted(stack: Stack) -> None:
    """No CORS grant: a page on another origin cannot read responses with credentials."""
    for base, path in ((stack.api.url, "/userinfo"), (stack.service.url, "/me")):
        preflight = httpx.options(
            base + path,
            headers={
                **CROSS_SITE,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert "access-control-allow-origin" not in preflight.headers
        assert "access-control-allow-credentials" not in preflight.headers


def test_token_endpoint_reads_credentials_from_the_body_only(stack: Stack) -> None:
    """A refresh token in a cookie is not a refresh token."""
    victim = _victim(stack)
    with httpx.Client(base_url=stack.api.url, cookies=_cookies(victim.refresh)) as client:
        response = client.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "client_id": "web"},
            headers=CROSS_SITE,
        )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert stack.api.refresh(victim.refresh).status_code == 200
