"""A relying party nobody here wrote, authlib, runs the whole flow and validates the ID token."""

from __future__ import annotations

from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken

from support.harness import ALICE, Api
from support.oidc_flow import SPA, Browser, register_browser_clients


def _id_token_claims(
    token: dict[str, str], jwks: dict[str, object], api: Api, nonce: str
) -> dict[str, object]:
    claims = jwt.decode(
        token["id_token"],
        JsonWebKey.import_key_set(jwks),
        claims_cls=CodeIDToken,
        claims_options={"iss": {"values": [api.url]}},
        claims_params={"nonce": nonce, "client_id": "spa", "access_token": token["access_token"]},
    )
    claims.validate()  # iss, aud, exp, iat, nonce, at_hash, auth_time
    return dict(claims)


def test_authlib_client_with_pkce_signs_alice_in(api: Api) -> None:
    register_browser_clients(api)
    doc = api.http.get("/.well-known/openid-configuration").json()
    client = OAuth2Client(
        client_id="spa",
        redirect_uri=SPA,
        scope="openid profile orders:read",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = generate_token(48)
    nonce = generate_token(20)
    url, state = client.create_authorization_url(
        doc["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    browser = Browser(api)
    try:
        page = browser.http.get(url)
        done = browser.submit_login(page, *ALICE)
    finally:
        browser.close()
    assert done.status_code == 303

    token = client.fetch_token(
        doc["token_endpoint"],
        authorization_response=done.headers["location"],
        code_verifier=verifier,
        state=state,
    )
    client.close()

    claims = _id_token_claims(token, api.jwks(), api, nonce)
    assert claims["sub"] == api.user_id("alice")
    assert claims["aud"] == "spa"
    userinfo = api.http.get(doc["userinfo_endpoint"], headers=api.bearer(token["access_token"]))
    assert userinfo.json()["sub"] == claims["sub"]
