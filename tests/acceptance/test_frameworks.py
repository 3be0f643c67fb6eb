"""A user's token from the real auth server in FastAPI, Flask and Strawberry services.

RFC 6750 §3: no token is a 401 with a bare ``Bearer`` challenge; a bad, expired
or foreign token a 401 ``invalid_token``; a missing role or scope a 403
``insufficient_scope`` (GraphQL: a ``FORBIDDEN`` error on the field).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from authmesh.jose import sign_jwt
from authmesh.testing import wait_for
from support.acceptance import FRAMEWORKS, Service, Stack, run_service, service_config
from support.harness import ADMIN, claims_of

REST = ("fastapi", "flask")


def _login(stack: Stack, *roles: str, **extra: str) -> tuple[str, dict[str, Any]]:
    api = stack.issuer.api
    name, password = api.new_user(*roles)
    token = str(api.login(name, password, **extra)["access_token"])
    return token, claims_of(token)


def _invalid_token(response: Any) -> str:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="orders"')
    assert 'error="invalid_token"' in challenge
    description: str = response.json()["error_description"]
    assert description and description in challenge
    return description


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_valid_token_is_accepted_and_its_principal_is_visible(
    stack: Stack, framework: str
) -> None:
    service = stack.services[framework]
    token, claims = _login(stack, "user", "clerk", scope="orders:read orders:write")

    response = service.whoami(token)

    assert response.status_code == 200, response.text
    body = response.json()
    me = body["data"]["me"] if framework == "graphql" else body
    assert me["sub"] == claims["sub"]
    assert me["roles"] == ["clerk", "user"]
    assert me["scopes"] == ["orders:read", "orders:write"]
    if framework != "graphql":
        assert me["sid"] == claims["sid"] and me["jti"] == claims["jti"]
        assert me["client_id"] == "web"


@pytest.mark.parametrize("framework", REST)
def test_no_token_is_a_401_without_an_error_code(stack: Stack, framework: str) -> None:
    response = stack.services[framework].get("/me")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="orders"'


def test_no_token_in_graphql(stack: Stack) -> None:
    service = stack.services["graphql"]

    # Public fields answer; a protected one is an UNAUTHENTICATED error (not FORBIDDEN).
    assert service.graphql("{ hello }").json() == {"data": {"hello": "world"}}
    body = service.graphql("{ me { sub } }").json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # A GraphQL service that wants every caller authenticated says so at the HTTP level.
    config = service_config(stack.issuer.url, stack.issuer.api.service_secret)
    with run_service("graphql", config, required=True) as strict:
        response = strict.graphql("{ hello }")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="orders"'
        token, _ = _login(stack)
        assert strict.graphql("{ hello }", token).json() == {"data": {"hello": "world"}}


def _tampered(token: str) -> str:
    head, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return f"{head}.{payload}.{flipped}"


def _expired(stack: Stack, token: str) -> str:
    # Signed with the server's real key, exactly like its tokens, but an hour old.
    claims = claims_of(token)
    now = int(time.time())
    claims.update(iat=now - 3600, exp=now - 3000)
    key = stack.issuer.thread.core.keys.signing_key()
    return sign_jwt(claims, key, typ="at+jwt")


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("garbage", "token header"),
        ("tampered", "signature"),
        ("expired", "expired"),
        ("other_audience", "audience"),
    ],
    ids=["garbage", "bad-signature", "expired", "other-audience"],
)
def test_a_bad_token_is_a_401_invalid_token(
    stack: Stack, framework: str, case: str, expected: str
) -> None:
    service = stack.services[framework]
    token, _ = _login(stack)
    assert service.accepts(token)
    bad = {
        "garbage": lambda: "not.a.jwt",
        "tampered": lambda: _tampered(token),
        "expired": lambda: _expired(stack, token),
        "other_audience": lambda: _login(stack, audience="catalog")[0],
    }[case]()

    response = service.whoami(bad)

    description = _invalid_token(response)
    assert expected in description.lower()


@pytest.mark.parametrize("framework", REST)
def test_a_missing_role_or_scope_is_a_403_insufficient_scope(stack: Stack, framework: str) -> None:
    service = stack.services[framework]
    reader, _ = _login(stack, scope="orders:read")
    writer, _ = _login(stack, scope="orders:read orders:write")
    admin = str(stack.issuer.api.login(*ADMIN)["access_token"])

    response = service.get("/admin", reader)
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and 'error="insufficient_scope"' in challenge
    assert response.json()["error"] == "insufficient_scope"
    assert service.get("/admin", admin).json() == {"admin": claims_of(admin)["sub"]}

    response = service.post("/orders", reader)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert 'scope="orders:write"' in response.headers["www-authenticate"]
    assert service.post("/orders", writer).status_code == 200


def test_a_missing_role_or_scope_in_graphql_is_forbidden(stack: Stack) -> None:
    service: Service = stack.services["graphql"]
    reader, _ = _login(stack, scope="orders:read")
    admin = str(stack.issuer.api.login(*ADMIN)["access_token"])

    body = service.graphql("{ adminReport }", reader).json()
    assert body["data"] == {"adminReport": None}
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert service.graphql("{ adminReport }", admin).json() == {
        "data": {"adminReport": "secret numbers"}
    }

    body = service.graphql("{ canWriteOrders }", reader).json()
    assert body["errors"][0]["extensions"] == {
        "code": "FORBIDDEN",
        "required_scopes": ["orders:write"],
    }
    writer, _ = _login(stack, scope="orders:write")
    assert service.graphql("{ canWriteOrders }", writer).json() == {
        "data": {"canWriteOrders": True}
    }


def test_a_flask_service_stops_promptly_while_following_the_feed(stack: Stack) -> None:
    # Its feed thread blocks reading the stream between heartbeats (2 s here).
    config = service_config(stack.issuer.url, stack.issuer.api.service_secret)
    with run_service("flask", config) as service:
        wait_for(service.feed_connected)
        time.sleep(0.1)  # the thread is now waiting for the next event or heartbeat
        started = time.monotonic()
    assert time.monotonic() - started < 1.0
    assert not service.auth.feed or not service.feed_connected()
