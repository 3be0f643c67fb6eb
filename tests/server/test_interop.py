"""Standard libraries talk to the server unchanged: PyJWT, joserfc and authlib's OAuth2 client."""

from __future__ import annotations

from collections.abc import Callable

import jwt
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet as JoseKeySet

from support.harness import ALICE, Api, claims_of, header_of

ALGS = ["EdDSA", "ES256", "RS256"]
# joserfc flags EdDSA (RFC 9864 deprecates the polymorphic name); the key is Ed25519.
JOSERFC_EDDSA = "ignore:EdDSA is deprecated via RFC 9864:joserfc.errors.SecurityWarning"
# authlib warns that it falls back to httpx because httpx2 is not installed.
AUTHLIB_HTTPX = "ignore:The httpx module is deprecated:authlib.deprecate.AuthlibDeprecationWarning"


@pytest.fixture
def api(shared: Api) -> Api:
    """The default server (EdDSA) is shared; the per-algorithm tests start their own."""
    return shared


@pytest.mark.parametrize("alg", ALGS)
def test_pyjwt_verifies_access_tokens_with_pyjwkclient(
    start_server: Callable[..., Api], alg: str
) -> None:
    api = start_server(signing_alg=alg)
    token = api.login(audience="orders")["access_token"]
    discovery = api.http.get("/.well-known/openid-configuration").json()

    client = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=False)
    key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key.key,
        algorithms=[alg],
        audience="orders",
        issuer=api.url,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )

    assert key.key_id == header_of(token)["kid"]
    assert claims == claims_of(token)
    assert claims["preferred_username"] == "alice"
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key.key, algorithms=[alg], audience="catalog", issuer=api.url)
    with pytest.raises(jwt.InvalidIssuerError):
        jwt.decode(token, key.key, algorithms=[alg], audience="orders", issuer="https://evil")


def test_pyjwt_verifies_a_client_credentials_token(api: Api) -> None:
    token = api.service_token()["access_token"]

    key = jwt.PyJWKClient(f"{api.url}/.well-known/jwks.json").get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], audience="catalog", issuer=api.url)

    assert claims["sub"] == "orders-svc"


@pytest.mark.filterwarnings(JOSERFC_EDDSA)
@pytest.mark.parametrize("alg", ALGS)
def test_joserfc_verifies_access_tokens_against_the_jwks(
    start_server: Callable[..., Api], alg: str
) -> None:
    api = start_server(signing_alg=alg)
    token = api.login()["access_token"]

    keys = JoseKeySet.import_key_set(api.jwks())  # type: ignore[arg-type]
    decoded = jose_jwt.decode(token, keys, algorithms=[alg])
    registry = jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": api.url},
        aud={"essential": True, "value": "catalog"},
        sub={"essential": True},
        exp={"essential": True},
        jti={"essential": True},
    )
    registry.validate(decoded.claims)

    assert decoded.header["typ"] == "at+jwt"
    assert decoded.header["kid"] == header_of(token)["kid"]
    assert decoded.claims == claims_of(token)


@pytest.mark.filterwarnings(JOSERFC_EDDSA)
def test_joserfc_rejects_a_tampered_token(api: Api) -> None:
    token = api.login()["access_token"]
    head, _payload, signature = token.split(".")
    other_payload = api.service_token()["access_token"].split(".")[1]
    keys = JoseKeySet.import_key_set(api.jwks())  # type: ignore[arg-type]

    with pytest.raises(Exception, match="signature"):
        jose_jwt.decode(f"{head}.{other_payload}.{signature}", keys, algorithms=["EdDSA"])


@pytest.mark.filterwarnings(AUTHLIB_HTTPX)
def test_authlib_runs_the_password_and_refresh_grants(api: Api) -> None:
    from authlib.integrations.httpx_client import OAuth2Client

    token_url = api.http.get("/.well-known/openid-configuration").json()["token_endpoint"]
    with OAuth2Client(client_id="web", token_endpoint_auth_method="none") as client:
        token = client.fetch_token(
            token_url, username=ALICE[0], password=ALICE[1], scope="orders:read"
        )
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "orders:read"
        assert api.verify(token["access_token"], audience="orders")["scope"] == "orders:read"
        first_refresh = token["refresh_token"]

        refreshed = client.refresh_token(token_url, refresh_token=first_refresh)

        assert refreshed["refresh_token"] != first_refresh
        assert (
            claims_of(refreshed["access_token"])["sid"] == claims_of(token["access_token"])["sid"]
        )
        # The client keeps the rotated token and sends it as a bearer.
        assert client.token["refresh_token"] == refreshed["refresh_token"]
        info = client.get(f"{api.url}/userinfo")
        assert info.status_code == 200
        assert info.json()["preferred_username"] == "alice"


@pytest.mark.filterwarnings(AUTHLIB_HTTPX)
@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_runs_client_credentials(api: Api, method: str) -> None:
    from authlib.integrations.httpx_client import OAuth2Client

    with OAuth2Client(
        client_id="orders-svc",
        client_secret=api.service_secret,
        token_endpoint_auth_method=method,
    ) as client:
        token = client.fetch_token(f"{api.url}/oauth/token", grant_type="client_credentials")

    assert "refresh_token" not in token
    claims = api.verify(token["access_token"], audience="catalog")
    assert claims["sub"] == "orders-svc"
    assert claims["scope"] == "catalog:read"


@pytest.mark.filterwarnings(AUTHLIB_HTTPX)
async def test_authlib_async_client_and_error_mapping(api: Api) -> None:
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    async with AsyncOAuth2Client(client_id="web", token_endpoint_auth_method="none") as client:
        token = await client.fetch_token(
            f"{api.url}/oauth/token", username=ALICE[0], password=ALICE[1]
        )
        assert claims_of(token["access_token"])["client_id"] == "web"
        with pytest.raises(OAuthError) as failure:
            await client.fetch_token(
                f"{api.url}/oauth/token", username=ALICE[0], password="wrong-password"
            )

    assert failure.value.error == "invalid_grant"
    assert failure.value.description == "invalid username or password"
