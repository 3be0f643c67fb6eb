"""Token exchange (RFC 8693): a service acts for the user towards another service, and no further.

Every attack is the request a compromised or careless service would really send:
a wider scope, another audience, someone else's token, a revoked token, a
public client, an unsupported token type.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest

from authmesh.server import clients
from support.harness import Api, basic

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _exchanger(api: Api, *, serves: list[str], audiences: list[str], scopes: list[str]) -> str:
    """A fresh confidential client allowed token exchange; its Basic credentials."""
    client_id = f"svc-{uuid.uuid4().hex[:8]}"
    made = api.server.call(
        clients.register_client(
            api.core,
            client_id=client_id,
            grant_types=["client_credentials", TOKEN_EXCHANGE],
            scopes=scopes,
            audiences=audiences,
            serves=serves,
        )
    )
    assert made.secret is not None
    return basic(client_id, made.secret)


def _exchange(api: Api, credentials: str, subject_token: str, **extra: str) -> Any:
    form = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject_token,
        "subject_token_type": ACCESS_TOKEN,
        "audience": "catalog",
        **extra,
    }
    return api.token(form, headers={"Authorization": credentials})


@pytest.fixture
def orders(api: Api) -> str:
    """The orders service: serves ``orders``, may exchange for ``catalog`` and read it."""
    return _exchanger(api, serves=["orders"], audiences=["catalog"], scopes=["catalog:read"])


def _user_token(api: Api, scope: str = "orders:read catalog:read") -> tuple[str, dict[str, Any]]:
    name, password = api.new_user()
    body = api.login(name, password, scope=scope, audience="orders")
    return str(body["access_token"]), body


def test_the_exchanged_token_names_the_user_and_the_acting_service(api: Api, orders: str) -> None:
    token, _ = _user_token(api)
    original = _claims(token)

    response = _exchange(api, orders, token)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issued_token_type"] == ACCESS_TOKEN
    assert body["token_type"] == "Bearer"
    assert "refresh_token" not in body
    claims = _claims(body["access_token"])
    assert claims["sub"] == original["sub"]
    assert claims["sid"] == original["sid"]
    assert claims["aud"] == "catalog"
    assert claims["act"] == {"sub": orders_client_id(orders)}
    assert claims["client_id"] == orders_client_id(orders)
    assert claims["scope"] == "catalog:read"
    assert claims["exp"] <= original["exp"]
    assert api.introspect(body["access_token"])["active"] is True


def orders_client_id(credentials: str) -> str:
    return base64.b64decode(credentials.split()[1]).decode().split(":")[0]


def test_a_delegated_token_delegated_again_keeps_the_whole_chain(api: Api, orders: str) -> None:
    catalog = _exchanger(api, serves=["catalog"], audiences=["pricing"], scopes=["catalog:read"])
    token, _ = _user_token(api)
    first = _exchange(api, orders, token).json()["access_token"]

    response = _exchange(api, catalog, first, audience="pricing")

    assert response.status_code == 200, response.text
    claims = _claims(response.json()["access_token"])
    assert claims["act"] == {
        "sub": orders_client_id(catalog),
        "act": {"sub": orders_client_id(orders)},
    }


def test_a_scope_the_user_token_lacks_is_refused(api: Api, orders: str) -> None:
    token, _ = _user_token(api, scope="orders:read")

    response = _exchange(api, orders, token, scope="catalog:read")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_a_scope_the_client_lacks_is_refused(api: Api, orders: str) -> None:
    token, _ = _user_token(api)

    response = _exchange(api, orders, token, scope="orders:read")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_with_no_scope_asked_it_gets_what_both_allow(api: Api, orders: str) -> None:
    token, _ = _user_token(api, scope="orders:read")

    response = _exchange(api, orders, token)

    assert response.status_code == 200
    assert response.json()["scope"] == ""


@pytest.mark.parametrize("audience", ["orders", "billing", ""])
def test_an_audience_the_client_may_not_ask_for_is_refused(
    api: Api, orders: str, audience: str
) -> None:
    token, _ = _user_token(api)

    response = _exchange(api, orders, token, audience=audience)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"


def test_a_token_meant_for_another_service_is_refused(api: Api) -> None:
    # billing may exchange, but alice's token was for orders, not billing.
    billing = _exchanger(api, serves=["billing"], audiences=["catalog"], scopes=["catalog:read"])
    token, _ = _user_token(api)

    response = _exchange(api, billing, token)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_revoked_user_token_cannot_be_exchanged(api: Api, orders: str) -> None:
    name, password = api.new_user()
    token = str(api.login(name, password, audience="orders")["access_token"])
    assert api.admin("POST", f"/admin/users/{name}/block").status_code == 200

    response = _exchange(api, orders, token)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "subject_token",
    ["not-a-token", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."],
)
def test_a_forged_or_garbled_subject_token_is_refused(
    api: Api, orders: str, subject_token: str
) -> None:
    response = _exchange(api, orders, subject_token)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_ending_the_session_ends_the_exchanged_token(api: Api, orders: str) -> None:
    token, _ = _user_token(api)
    exchanged = _exchange(api, orders, token).json()["access_token"]
    assert api.introspect(exchanged)["active"] is True

    logout = api.http.post("/account/logout", headers=api.bearer(token))
    assert logout.status_code == 204, logout.text

    assert api.introspect(exchanged)["active"] is False
    assert ("sid", _claims(token)["sid"]) in api.events()


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (
            {"subject_token_type": "urn:ietf:params:oauth:token-type:refresh_token"},
            "invalid_request",
        ),
        ({"subject_token_type": ""}, "invalid_request"),
        ({"requested_token_type": "urn:ietf:params:oauth:token-type:id_token"}, "invalid_request"),
        ({"actor_token": "x", "actor_token_type": ACCESS_TOKEN}, "invalid_request"),
    ],
)
def test_unsupported_parameters_are_refused(
    api: Api, orders: str, extra: dict[str, str], error: str
) -> None:
    token, _ = _user_token(api)

    response = _exchange(api, orders, token, **extra)

    assert response.status_code == 400
    assert response.json()["error"] == error


def test_a_client_without_the_grant_is_refused(api: Api) -> None:
    token, _ = _user_token(api)

    response = _exchange(api, api.service_basic, token)

    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_a_public_client_cannot_be_registered_for_it(api: Api) -> None:
    response = api.admin(
        "POST",
        "/admin/clients",
        json={
            "client_id": "spa-x",
            "public": True,
            "grant_types": [TOKEN_EXCHANGE],
            "serves": ["orders"],
        },
    )
    assert response.status_code == 400
    assert "public" in response.json()["error_description"]


def test_every_exchange_is_audited(api: Api, orders: str) -> None:
    token, _ = _user_token(api)
    assert _exchange(api, orders, token).status_code == 200

    events = api.admin("GET", "/admin/audit", params={"action": "token_exchange"}).json()
    assert any(e["client_id"] == orders_client_id(orders) for e in events["events"])


def test_discovery_advertises_the_grant(api: Api) -> None:
    metadata = api.http.get("/.well-known/openid-configuration").json()
    assert TOKEN_EXCHANGE in metadata["grant_types_supported"]
