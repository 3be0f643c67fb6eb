"""RFC 7009 revocation and RFC 7662 introspection."""

from __future__ import annotations

import uuid

import pytest

from authmesh.server.clients import register_client
from support.harness import Api, basic, claims_of

BAD_REFRESH = {
    "error": "invalid_grant",
    "error_description": "the refresh token is invalid, expired or revoked",
}


@pytest.fixture
def api(shared: Api) -> Api:
    """Tests here touch only their own sessions and read the feed after a cursor."""
    return shared


def test_revoking_a_refresh_token_ends_its_session(api: Api) -> None:
    login, other = api.login(), api.login()
    sid = claims_of(login["access_token"])["sid"]
    before = api.latest_cursor()

    response = api.revoke(login["refresh_token"], token_type_hint="refresh_token")

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["cache-control"] == "no-store"
    assert api.introspect(login["access_token"]) == {"active": False}
    assert api.refresh(login["refresh_token"]).json() == BAD_REFRESH
    assert api.userinfo(login["access_token"]).status_code == 401
    assert api.events(before) == [("sid", sid)]
    # Revoking again is still a 200 and writes nothing new.
    assert api.revoke(login["refresh_token"]).status_code == 200
    assert api.events(before) == [("sid", sid)]
    assert api.introspect(other["access_token"])["active"] is True


def test_revoking_an_access_token_revokes_only_that_token(api: Api) -> None:
    login = api.login()
    jti = claims_of(login["access_token"])["jti"]
    before = api.latest_cursor()

    response = api.revoke(login["access_token"], token_type_hint="access_token")

    assert response.status_code == 200
    assert api.introspect(login["access_token"]) == {"active": False}
    assert api.userinfo(login["access_token"]).status_code == 401
    assert api.events(before) == [("jti", jti)]
    # The session goes on: its refresh token still works.
    refreshed = api.refresh(login["refresh_token"])
    assert refreshed.status_code == 200
    assert api.introspect(refreshed.json()["access_token"])["active"] is True


def test_a_service_revokes_its_own_access_token(api: Api) -> None:
    token = api.service_token()["access_token"]
    before = api.latest_cursor()

    response = api.http.post(
        "/oauth/revoke", data={"token": token}, headers={"Authorization": api.service_basic}
    )

    assert response.status_code == 200
    assert api.introspect(token) == {"active": False}
    assert api.events(before) == [("jti", claims_of(token)["jti"])]


@pytest.mark.parametrize(
    "token", ["garbage", "a.b.c", "", "x" * 5000], ids=["garbage", "dots", "empty", "long"]
)
def test_revoking_an_unknown_token_is_still_200(api: Api, token: str) -> None:
    before = api.latest_cursor()
    response = (
        api.revoke(token)
        if token
        else api.http.post("/oauth/revoke", data={"token": "", "client_id": "web"})
    )

    if token:
        assert response.status_code == 200
        assert api.events(before) == []
    else:  # an empty value counts as a missing parameter
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"


def test_another_client_cannot_revoke_a_token(api: Api) -> None:
    login = api.login()
    before = api.latest_cursor()

    for token in (login["access_token"], login["refresh_token"]):
        response = api.http.post(
            "/oauth/revoke", data={"token": token}, headers={"Authorization": api.service_basic}
        )
        assert response.status_code == 200
    assert api.introspect(login["access_token"])["active"] is True
    assert api.refresh(login["refresh_token"]).status_code == 200
    assert api.events(before) == []


def test_revocation_needs_client_authentication(api: Api) -> None:
    login = api.login()

    anonymous = api.http.post("/oauth/revoke", data={"token": login["access_token"]})
    wrong = api.http.post(
        "/oauth/revoke",
        data={"token": login["access_token"]},
        headers={"Authorization": basic("orders-svc", "wrong")},
    )

    for response in (anonymous, wrong):
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"] == 'Basic realm="authmesh"'
    assert api.introspect(login["access_token"])["active"] is True


def test_introspecting_an_active_access_token(api: Api) -> None:
    login = api.login(scope="orders:read", audience="orders")
    claims = claims_of(login["access_token"])

    response = api.http.post(
        "/oauth/introspect",
        data={"token": login["access_token"], "token_type_hint": "access_token"},
        headers={"Authorization": api.service_basic},
    )

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body == {"active": True, "token_type": "Bearer", **claims}
    assert body["scope"] == "orders:read"
    assert body["client_id"] == "web"
    assert body["aud"] == "orders"
    assert body["iss"] == api.url


def test_introspection_with_the_secret_in_the_body(api: Api) -> None:
    token = api.login()["access_token"]

    response = api.http.post(
        "/oauth/introspect",
        data={"token": token, "client_id": "orders-svc", "client_secret": api.service_secret},
    )

    assert response.status_code == 200
    assert response.json()["active"] is True


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        "x" * 10_000,
    ],
    ids=["garbage", "three-dots", "alg-none", "huge"],
)
def test_introspecting_garbage_is_inactive(api: Api, token: str) -> None:
    assert api.introspect(token) == {"active": False}


def test_introspecting_a_forged_token_is_inactive(api: Api) -> None:
    token = api.login()["access_token"]
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"

    assert api.introspect(forged) == {"active": False}


def test_introspecting_a_refresh_token(api: Api) -> None:
    first_party = f"first-party-{uuid.uuid4().hex[:8]}"
    made = api.server.call(
        register_client(
            api.core,
            client_id=first_party,
            grant_types=["password", "refresh_token"],
            scopes=["orders:read"],
        )
    )
    assert made.secret is not None
    own = basic(first_party, made.secret)
    login = api.token(
        {"grant_type": "password", "username": "alice", "password": "alice-password-1"},
        headers={"Authorization": own},
    ).json()
    claims = claims_of(login["access_token"])

    def introspect(token: str, auth: str) -> dict[str, object]:
        response = api.http.post(
            "/oauth/introspect",
            data={"token": token, "token_type_hint": "refresh_token"},
            headers={"Authorization": auth},
        )
        assert response.status_code == 200
        body: dict[str, object] = response.json()
        return body

    body = introspect(login["refresh_token"], own)
    assert body["active"] is True
    assert body["token_type"] == "refresh_token"
    assert body["client_id"] == first_party
    assert body["sub"] == claims["sub"]
    assert body["sid"] == claims["sid"]
    assert body["scope"] == "orders:read"
    assert body["iss"] == api.url
    # Another client learns nothing about it.
    assert introspect(login["refresh_token"], api.service_basic) == {"active": False}
    # A used (rotated) refresh token is no longer active.
    rotated = api.token(
        {"grant_type": "refresh_token", "refresh_token": login["refresh_token"]},
        headers={"Authorization": own},
    )
    assert rotated.status_code == 200
    assert introspect(login["refresh_token"], own) == {"active": False}
    assert introspect(rotated.json()["refresh_token"], own)["active"] is True


@pytest.mark.parametrize(
    "auth",
    [
        {},
        {"Authorization": basic("orders-svc", "wrong")},
        {"Authorization": basic("nobody", "x")},
    ],
    ids=["none", "wrong-secret", "unknown-client"],
)
def test_introspection_needs_client_authentication(api: Api, auth: dict[str, str]) -> None:
    token = api.login()["access_token"]

    response = api.http.post("/oauth/introspect", data={"token": token}, headers=auth)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"] == 'Basic realm="authmesh"'
    assert "active" not in response.text


def test_a_public_client_cannot_introspect(api: Api) -> None:
    # Discovery says introspection takes client_secret_basic or _post: a public
    # client id proves nothing, so it must not learn other users' claims.
    token = api.login()["access_token"]

    response = api.http.post("/oauth/introspect", data={"token": token, "client_id": "web"})

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    methods = api.http.get("/.well-known/openid-configuration").json()[
        "introspection_endpoint_auth_methods_supported"
    ]
    assert "none" not in methods
