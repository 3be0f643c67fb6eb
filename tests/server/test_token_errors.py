"""Every RFC 6749 §5.2 error of the token endpoint, with its exact status and body.

One server per backend serves the whole table (the requests change nothing but
the audit trail). Nothing here may ever answer 500.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from authmesh.server import accounts
from support.databases import db_target
from support.harness import ALICE, BACKENDS, Api, basic, launch

_PARAMS = [
    pytest.param(b, id=b, marks=[pytest.mark.postgres] if b == "postgres" else []) for b in BACKENDS
]
BAD_LOGIN = {"error": "invalid_grant", "error_description": "invalid username or password"}
BAD_CLIENT = {"error": "invalid_client", "error_description": "client authentication failed"}
BAD_REFRESH = {
    "error": "invalid_grant",
    "error_description": "the refresh token is invalid, expired or revoked",
}
PASSWORD = {"grant_type": "password", "username": ALICE[0], "password": ALICE[1]}


@pytest.fixture(scope="module", params=_PARAMS)
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One seeded server per backend, plus a blocked user ``bob``."""
    tmp: Path = tmp_path_factory.mktemp(request.param)
    with db_target(request.param, tmp) as target:
        api = launch(target)
        try:
            api.server.call(
                accounts.create_user(api.core, username="bob", password="bob-password-12")
            )
            api.server.call(accounts.block_user(api.core, "bob"))
            yield api
        finally:
            api.close()
            api.server.stop()


@dataclass(frozen=True)
class Case:
    """One bad request and the error it must get."""

    send: Callable[[Api], httpx.Response]
    status: int
    error: str
    description: str | None = None


def _form(
    data: dict[str, str] | list[tuple[str, str]], **headers: str
) -> Callable[[Api], httpx.Response]:
    return lambda api: api.token(data, headers=headers or None)


def _raw(content: bytes, content_type: str | None) -> Callable[[Api], httpx.Response]:
    def send(api: Api) -> httpx.Response:
        headers = {"Content-Type": content_type} if content_type else {}
        return api.http.post("/oauth/token", content=content, headers=headers)

    return send


def _service(data: dict[str, str]) -> Callable[[Api], httpx.Response]:
    return lambda api: api.token(data, headers={"Authorization": api.service_basic})


def _b64(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


CASES: dict[str, Case] = {
    # invalid_request: missing, repeated or malformed parameters
    "missing-grant-type": Case(
        _form({"client_id": "web", "username": "alice", "password": "x"}),
        400,
        "invalid_request",
        "the 'grant_type' parameter is required",
    ),
    "empty-body": Case(
        _raw(b"", "application/x-www-form-urlencoded"),
        400,
        "invalid_request",
        "the 'grant_type' parameter is required",
    ),
    "missing-username": Case(
        _form({"grant_type": "password", "client_id": "web", "password": ALICE[1]}),
        400,
        "invalid_request",
        "the 'username' parameter is required",
    ),
    "missing-password": Case(
        _form({"grant_type": "password", "client_id": "web", "username": "alice"}),
        400,
        "invalid_request",
        "the 'password' parameter is required",
    ),
    "empty-password": Case(
        _form({**PASSWORD, "client_id": "web", "password": ""}),
        400,
        "invalid_request",
        "the 'password' parameter is required",
    ),
    "missing-refresh-token": Case(
        _form({"grant_type": "refresh_token", "client_id": "web"}),
        400,
        "invalid_request",
        "the 'refresh_token' parameter is required",
    ),
    "repeated-grant-type": Case(
        _form([("grant_type", "password"), ("grant_type", "password"), ("client_id", "web")]),
        400,
        "invalid_request",
        "the 'grant_type' parameter is repeated",
    ),
    "repeated-username": Case(
        _form([*PASSWORD.items(), ("username", "admin"), ("client_id", "web")]),
        400,
        "invalid_request",
        "the 'username' parameter is repeated",
    ),
    "repeated-client-id": Case(
        _form([*PASSWORD.items(), ("client_id", "web"), ("client_id", "web")]),
        400,
        "invalid_request",
        "the 'client_id' parameter is repeated",
    ),
    "text-plain-body": Case(
        _raw(b"grant_type=password&username=alice&password=x&client_id=web", "text/plain"),
        400,
        "invalid_request",
        "the body must be application/x-www-form-urlencoded",
    ),
    "no-content-type": Case(
        _raw(b"grant_type=password&username=alice&password=x&client_id=web", None),
        400,
        "invalid_request",
        "the body must be application/x-www-form-urlencoded",
    ),
    "json-body": Case(
        lambda api: api.http.post("/oauth/token", json={**PASSWORD, "client_id": "web"}),
        400,
        "invalid_request",
        "the body must be application/x-www-form-urlencoded",
    ),
    "multipart-body": Case(
        lambda api: api.http.post(
            "/oauth/token", files={"grant_type": (None, "password")}, data={"client_id": "web"}
        ),
        400,
        "invalid_request",
        "the body must be application/x-www-form-urlencoded",
    ),
    "nul-in-value": Case(
        _form({**PASSWORD, "client_id": "web", "username": "ali\x00ce"}),
        400,
        "invalid_request",
        "parameters must not contain NUL characters",
    ),
    "invalid-utf8": Case(
        _raw(
            b"grant_type=password&username=%ff%fe&password=x&client_id=web",
            "application/x-www-form-urlencoded",
        ),
        400,
        "invalid_request",
        "the body is not valid form-encoded UTF-8",
    ),
    "oversized-body": Case(
        _raw(b"grant_type=password&username=" + b"a" * 20_000, "application/x-www-form-urlencoded"),
        400,
        "invalid_request",
        "the request body is too large",
    ),
    "client-id-differs-from-basic": Case(
        _form(
            {"grant_type": "client_credentials", "client_id": "web"},
            Authorization=basic("orders-svc", "whatever"),
        ),
        400,
        "invalid_request",
        "client_id in the body differs from the authenticated client",
    ),
    # RFC 6749 §5.2 lists "utilizes more than one mechanism for authenticating
    # the client" under invalid_request.
    "basic-and-post": Case(
        lambda api: api.token(
            {
                "grant_type": "client_credentials",
                "client_id": "orders-svc",
                "client_secret": api.service_secret,
            },
            headers={"Authorization": api.service_basic},
        ),
        400,
        "invalid_request",
        "use one client authentication method, not several",
    ),
    "public-client-credentials-grant": Case(
        # A public client is never given client_credentials: it has nothing to prove.
        _form({"grant_type": "client_credentials", "client_id": "web"}),
        400,
        "unauthorized_client",
        "this client may not use the client_credentials grant",
    ),
    # invalid_client: 401 with WWW-Authenticate
    "no-client-at-all": Case(
        _form(PASSWORD), 401, "invalid_client", "client authentication is required"
    ),
    "unknown-client": Case(
        _form({**PASSWORD, "client_id": "nobody"}),
        401,
        "invalid_client",
        "client authentication failed",
    ),
    "unknown-client-basic": Case(
        _form({"grant_type": "client_credentials"}, Authorization=basic("nobody", "secret")),
        401,
        "invalid_client",
        "client authentication failed",
    ),
    "wrong-secret-basic": Case(
        _form({"grant_type": "client_credentials"}, Authorization=basic("orders-svc", "wrong")),
        401,
        "invalid_client",
        "client authentication failed",
    ),
    "wrong-secret-post": Case(
        _form(
            {
                "grant_type": "client_credentials",
                "client_id": "orders-svc",
                "client_secret": "wrong",
            }
        ),
        401,
        "invalid_client",
        "client authentication failed",
    ),
    "missing-secret-confidential": Case(
        _form({"grant_type": "client_credentials", "client_id": "orders-svc"}),
        401,
        "invalid_client",
        "client authentication failed",
    ),
    "secret-for-public-client": Case(
        _form({**PASSWORD, "client_id": "web", "client_secret": "anything"}),
        401,
        "invalid_client",
        "client authentication failed",
    ),
    "basic-for-public-client": Case(
        _form(PASSWORD, Authorization=basic("web", "anything")),
        401,
        "invalid_client",
        "client authentication failed",
    ),
    "malformed-basic-not-base64": Case(
        _form(PASSWORD, Authorization="Basic %%%not-base64%%%"),
        401,
        "invalid_client",
        "malformed HTTP Basic client credentials",
    ),
    "malformed-basic-no-colon": Case(
        _form(PASSWORD, Authorization=_b64(b"web")),
        401,
        "invalid_client",
        "malformed HTTP Basic client credentials",
    ),
    "malformed-basic-not-utf8": Case(
        _form(PASSWORD, Authorization=_b64(b"\xff\xfe:secret")),
        401,
        "invalid_client",
        "malformed HTTP Basic client credentials",
    ),
    "nul-in-basic-client-id": Case(
        _form({"grant_type": "client_credentials"}, Authorization=_b64(b"orders\x00svc:secret")),
        401,
        "invalid_client",
        "malformed HTTP Basic client credentials",
    ),
    "encoded-nul-in-basic-client-id": Case(
        _form({"grant_type": "client_credentials"}, Authorization=_b64(b"orders%00svc:secret")),
        401,
        "invalid_client",
        "malformed HTTP Basic client credentials",
    ),
    # invalid_grant: never tells whether the username exists
    "wrong-password": Case(
        _form({**PASSWORD, "client_id": "web", "password": "not-her-password"}),
        400,
        "invalid_grant",
        "invalid username or password",
    ),
    "unknown-user": Case(
        _form({**PASSWORD, "client_id": "web", "username": "mallory"}),
        400,
        "invalid_grant",
        "invalid username or password",
    ),
    "blocked-user-right-password": Case(
        _form({**PASSWORD, "client_id": "web", "username": "bob", "password": "bob-password-12"}),
        400,
        "invalid_grant",
        "invalid username or password",
    ),
    "bad-refresh-token": Case(
        _form({"grant_type": "refresh_token", "client_id": "web", "refresh_token": "nope"}),
        400,
        "invalid_grant",
        "the refresh token is invalid, expired or revoked",
    ),
    # unauthorized_client: the grant is not allowed for this client
    "service-client-password-grant": Case(
        _service(PASSWORD),
        400,
        "unauthorized_client",
        "this client may not use the password grant",
    ),
    "service-client-refresh-grant": Case(
        _service({"grant_type": "refresh_token", "refresh_token": "x"}),
        400,
        "unauthorized_client",
        "this client may not use the refresh_token grant",
    ),
    "password-client-authorization-code": Case(
        _form({"grant_type": "authorization_code", "code": "x", "client_id": "web"}),
        400,
        "unauthorized_client",
        "this client may not use the authorization_code grant",
    ),
    # unsupported_grant_type
    "made-up-grant": Case(
        _form({"grant_type": "urn:example:magic", "client_id": "web"}),
        400,
        "unsupported_grant_type",
        "supported: authorization_code, password, refresh_token, client_credentials, "
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ),
    # invalid_scope / invalid_target
    "scope-not-allowed": Case(
        _form({**PASSWORD, "client_id": "web", "scope": "orders:read admin:all"}),
        400,
        "invalid_scope",
        "scope not allowed for this client: admin:all",
    ),
    "service-scope-not-allowed": Case(
        _service({"grant_type": "client_credentials", "scope": "orders:write"}),
        400,
        "invalid_scope",
        "scope not allowed for this client: orders:write",
    ),
    "audience-not-allowed": Case(
        _form({**PASSWORD, "client_id": "web", "audience": "billing"}),
        400,
        "invalid_target",
        "audience not allowed for this client: billing",
    ),
    "resource-not-allowed": Case(
        _service({"grant_type": "client_credentials", "resource": "orders"}),
        400,
        "invalid_target",
        "audience not allowed for this client: orders",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_token_endpoint_error(srv: Api, name: str) -> None:
    case = CASES[name]

    response = case.send(srv)

    assert response.status_code == case.status, response.text
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == case.error
    if case.description is not None:
        assert body["error_description"] == case.description
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    if case.status == 401:
        assert response.headers["www-authenticate"] == 'Basic realm="authmesh"'
    else:
        assert "www-authenticate" not in response.headers


def test_unknown_user_and_wrong_password_look_the_same(srv: Api) -> None:
    unknown = srv.password_grant("mallory", "some-password-1")
    wrong = srv.password_grant("alice", "some-password-1")
    blocked = srv.password_grant("bob", "bob-password-12")

    for response in (unknown, wrong, blocked):
        assert response.status_code == 400
        assert response.json() == BAD_LOGIN
        assert response.content == wrong.content
    skip = {"date", "content-length"}
    assert {k: v for k, v in unknown.headers.items() if k not in skip} == {
        k: v for k, v in wrong.headers.items() if k not in skip
    }


def test_failed_client_authentication_does_not_tell_why(srv: Api) -> None:
    responses = [
        srv.password_grant(client_id="nobody"),
        srv.token(
            {"grant_type": "client_credentials"},
            headers={"Authorization": basic("orders-svc", "x")},
        ),
        srv.password_grant(client_secret="x"),
    ]
    for response in responses:
        assert response.status_code == 401
        assert response.json() == BAD_CLIENT


def test_get_on_the_token_endpoint_is_405(srv: Api) -> None:
    response = srv.http.get("/oauth/token")

    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_successful_login_still_works_after_the_errors(srv: Api) -> None:
    # The table above must not have locked alice out or broken the server.
    assert srv.password_grant().status_code == 200
    assert srv.refresh("garbage").json() == BAD_REFRESH


@pytest.mark.parametrize(
    ("form", "headers", "error"),
    [
        (
            {"grant_type": "password"},
            {"Authorization": basic("orders-svc", "wrong")},
            "invalid_client",
        ),
        ({"grant_type": "refresh_token", "client_id": "nobody"}, {}, "invalid_client"),
        ({"grant_type": "refresh_token"}, None, "unauthorized_client"),
        ({"grant_type": "password", "client_id": "web"}, {}, "invalid_request"),
        ({"grant_type": "refresh_token", "client_id": "web"}, {}, "invalid_request"),
    ],
    ids=[
        "password-bad-client-before-missing-params",
        "refresh-unknown-client-before-missing-token",
        "refresh-grant-not-allowed-before-missing-token",
        "password-missing-params-after-client",
        "refresh-missing-token-after-client",
    ],
)
def test_client_errors_come_before_parameter_errors(
    srv: Api, form: dict[str, str], headers: dict[str, str] | None, error: str
) -> None:
    # The password and refresh grants authenticate the client inside their own
    # transaction: the answer must still name the client's fault first.
    sent = srv.token(
        form, headers=headers if headers is not None else {"Authorization": srv.service_basic}
    )
    assert sent.json()["error"] == error
    assert sent.status_code == (401 if error == "invalid_client" else 400)
