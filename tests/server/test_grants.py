"""The three grants of the token endpoint (RFC 6749 §4.3, §4.4, §6) over real HTTP."""

from __future__ import annotations

import uuid

import httpx
import pytest

from authmesh.jose import WrongAudience
from authmesh.server.clients import register_client
from support.harness import ALICE, Api, claims_of, header_of


@pytest.fixture
def api(shared: Api) -> Api:
    """Every test here reads or opens its own sessions: one server per backend will do."""
    return shared


def _assert_no_store(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def test_password_grant_issues_access_and_refresh_token(api: Api) -> None:
    response = api.password_grant()

    assert response.status_code == 200, response.text
    _assert_no_store(response)
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "catalog:read orders:read orders:write"
    assert len(body["refresh_token"]) >= 43  # 256 bits, base64url

    header = header_of(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "EdDSA"
    assert header["kid"] == api.jwks()["keys"][0]["kid"]

    claims = api.verify(body["access_token"], audience="orders")
    assert claims["iss"] == api.url
    assert claims["aud"] == ["catalog", "orders"]
    assert claims["client_id"] == "web"
    assert claims["scope"] == body["scope"]
    assert claims["roles"] == ["user"]
    assert claims["preferred_username"] == "alice"
    assert claims["exp"] - claims["iat"] == 600
    assert claims["nbf"] == claims["iat"]
    uuid.UUID(claims["sid"])
    uuid.UUID(claims["jti"])
    uuid.UUID(claims["sub"])
    assert claims["auth_time"] <= claims["iat"]

    info = api.userinfo(body["access_token"])
    assert info.status_code == 200
    assert info.json() == {"sub": claims["sub"], "roles": ["user"], "preferred_username": "alice"}


def test_password_grant_narrows_scope_and_audience(api: Api) -> None:
    body = api.login(scope="orders:read", audience="orders")

    assert body["scope"] == "orders:read"
    claims = api.verify(body["access_token"], audience="orders")
    assert claims["aud"] == "orders"
    assert claims["scope"] == "orders:read"
    with pytest.raises(WrongAudience):
        api.verify(body["access_token"], audience="catalog")


def test_several_audiences_may_be_requested(api: Api) -> None:
    body = api.token(
        [
            ("grant_type", "password"),
            ("username", ALICE[0]),
            ("password", ALICE[1]),
            ("client_id", "web"),
            ("audience", "orders"),
            ("audience", "catalog"),
        ]
    )

    assert body.status_code == 200, body.text
    assert claims_of(body.json()["access_token"])["aud"] == ["catalog", "orders"]


def test_resource_parameter_is_an_audience(api: Api) -> None:
    body = api.login(resource="catalog")

    assert claims_of(body["access_token"])["aud"] == "catalog"


def test_usernames_are_case_insensitive(api: Api) -> None:
    body = api.login("ALICE", ALICE[1])

    assert claims_of(body["access_token"])["preferred_username"] == "alice"


def test_each_login_opens_its_own_session(api: Api) -> None:
    first = claims_of(api.login()["access_token"])
    second = claims_of(api.login()["access_token"])

    assert first["sub"] == second["sub"]
    assert first["sid"] != second["sid"]
    assert first["jti"] != second["jti"]


def test_refresh_grant_rotates_and_keeps_the_session(api: Api) -> None:
    login = api.login()

    response = api.refresh(login["refresh_token"])

    assert response.status_code == 200, response.text
    _assert_no_store(response)
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == login["scope"]
    assert body["refresh_token"] != login["refresh_token"]
    old, new = claims_of(login["access_token"]), claims_of(body["access_token"])
    assert new["sid"] == old["sid"]
    assert new["sub"] == old["sub"]
    assert new["jti"] != old["jti"]
    assert new["auth_time"] == old["auth_time"]
    assert api.verify(body["access_token"], audience="catalog")["client_id"] == "web"


def test_refresh_may_narrow_but_not_widen_the_scope(api: Api) -> None:
    login = api.login(scope="orders:read orders:write")

    narrowed = api.refresh(login["refresh_token"], scope="orders:read")
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "orders:read"
    assert claims_of(narrowed.json()["access_token"])["scope"] == "orders:read"

    widened = api.refresh(narrowed.json()["refresh_token"], scope="orders:read catalog:read")
    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_scope"


def test_refresh_token_of_another_client_is_invalid_grant(api: Api) -> None:
    mobile = f"mobile-{uuid.uuid4().hex[:8]}"
    api.server.call(
        register_client(
            api.core, client_id=mobile, public=True, grant_types=["password", "refresh_token"]
        )
    )
    login = api.login()

    response = api.refresh(login["refresh_token"], client_id=mobile)

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "the refresh token is invalid, expired or revoked",
    }
    # The failed attempt did not burn the token for its own client.
    assert api.refresh(login["refresh_token"]).status_code == 200


def test_client_credentials_with_basic_auth(api: Api) -> None:
    response = api.token(
        {"grant_type": "client_credentials"}, headers={"Authorization": api.service_basic}
    )

    assert response.status_code == 200, response.text
    _assert_no_store(response)
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["scope"] == "catalog:read"
    claims = api.verify(body["access_token"], audience="catalog")
    assert claims["sub"] == "orders-svc"
    assert claims["client_id"] == "orders-svc"
    assert claims["aud"] == "catalog"
    assert claims["roles"] == ["service"]
    assert "sid" not in claims
    assert "preferred_username" not in claims


def test_client_credentials_with_secret_in_the_body(api: Api) -> None:
    response = api.token(
        {
            "grant_type": "client_credentials",
            "client_id": "orders-svc",
            "client_secret": api.service_secret,
            "scope": "catalog:read",
            "audience": "catalog",
        }
    )

    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["sub"] == "orders-svc"


def test_client_credentials_token_is_live_at_the_server(api: Api) -> None:
    token = api.service_token()["access_token"]

    body = api.introspect(token)

    assert body["active"] is True
    assert body["sub"] == "orders-svc"
    assert body["client_id"] == "orders-svc"
