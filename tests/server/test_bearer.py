"""RFC 6750 on the auth server's own endpoints: the realm from settings, header errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from support.challenges import parse_challenge
from support.harness import Api


def test_realm_comes_from_the_settings(start_server: Callable[..., Api]) -> None:
    api = start_server(realm="shop")
    missing = api.http.get("/userinfo")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="shop"'
    revoked = api.http.get("/userinfo", headers=api.bearer("not.a.token"))
    assert revoked.headers["www-authenticate"].startswith(
        'Bearer realm="shop", error="invalid_token"'
    )
    feed = api.http.get("/revocations", headers={"Authorization": "Basic Og=="})
    assert feed.status_code == 401
    assert feed.headers["www-authenticate"] == 'Basic realm="shop"'


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer a b", "Token abc"],
    ids=["no-token", "two-tokens", "other-scheme"],
)
def test_a_malformed_header_is_invalid_request(api: Api, header: str) -> None:
    response = api.http.get("/userinfo", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_request"
    challenge = parse_challenge(response.headers["www-authenticate"])
    assert challenge["realm"] == "authmesh"
    assert challenge["error"] == "invalid_request"
    assert challenge["error_description"] == response.json()["error_description"]
