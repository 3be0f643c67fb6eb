"""DPoP at services (RFC 9449 §7): a bound token works only with a fresh proof by its key.

The real auth server issues bound tokens; real FastAPI and Flask services check
them. Each attack is what a thief holding a stolen token really tries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask, g

from authmesh.dpop import make_proof
from authmesh.jose import Key
from authmesh.service import ClientCredentialsAuth, DPoPAuth, ServiceAuth
from authmesh.service.fastapi import CurrentPrincipal
from authmesh.service.fastapi import install as install_fastapi
from authmesh.service.flask import install as install_flask
from authmesh.testing import UvicornThread, WerkzeugThread
from support.acceptance import service_config
from support.databases import db_target
from support.harness import Api, launch


def fastapi_app(auth: ServiceAuth) -> FastAPI:
    app = FastAPI()
    install_fastapi(app, auth)

    @app.get("/me")
    async def me(user: CurrentPrincipal) -> dict[str, Any]:
        return {"sub": user.subject, "jkt": user.dpop_jkt}

    return app


def flask_app(auth: ServiceAuth) -> Flask:
    app = Flask(__name__)
    ext = install_flask(app, auth)

    @app.get("/me")
    @ext.required
    def me() -> dict[str, Any]:
        return {"sub": g.principal.subject, "jkt": g.principal.dpop_jkt}

    return app


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with db_target("sqlite", tmp_path_factory.mktemp("dpop")) as target:
        api = launch(target)
        config = service_config(api.url, api.service_secret, audience="catalog")
        with contextlib.ExitStack() as stack:
            fast = stack.enter_context(UvicornThread(fastapi_app(ServiceAuth(config))))
            flask_auth = ServiceAuth(config)
            flask = stack.enter_context(WerkzeugThread(flask_app(flask_auth)))
            stack.callback(flask_auth.stop)
            yield {
                "api": api,
                "config": config,
                "services": {"fastapi": fast.url, "flask": flask.url},
            }
        api.close()
        api.server.stop()


SERVICES = ["fastapi", "flask"]


def _bound_token(stack: dict[str, Any], key: Key) -> str:
    api: Api = stack["api"]
    response = api.token(
        {"grant_type": "client_credentials", "audience": "catalog"},
        headers={
            "Authorization": api.service_basic,
            "DPoP": make_proof(key, method="POST", url=f"{api.url}/oauth/token"),
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    return str(response.json()["access_token"])


@pytest.mark.parametrize("service", SERVICES)
def test_the_sdks_own_client_gets_and_sends_bound_tokens(
    stack: dict[str, Any], service: str
) -> None:
    key = Key.generate("EdDSA")
    auth = ClientCredentialsAuth(stack["config"], audience="catalog", dpop_key=key)
    try:
        with httpx.Client(auth=auth, timeout=10) as client:
            first = client.get(f"{stack['services'][service]}/me")
            second = client.get(f"{stack['services'][service]}/me")
    finally:
        auth.close()

    assert first.status_code == 200, first.text
    assert first.json()["jkt"] == key.thumbprint()
    assert second.status_code == 200  # a new proof for each request
    assert auth.token_requests == 1


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(
    "attack",
    [
        "as-bearer",
        "no-proof",
        "proof-by-another-key",
        "proof-for-another-url",
        "proof-for-another-method",
        "proof-without-ath",
        "replayed-proof",
        "two-proofs",
    ],
)
def test_a_stolen_bound_token_is_useless(stack: dict[str, Any], service: str, attack: str) -> None:
    key = Key.generate("ES256")
    token = _bound_token(stack, key)
    url = f"{stack['services'][service]}/me"
    headers: Any = {"Authorization": f"DPoP {token}"}
    if attack == "as-bearer":
        headers = {"Authorization": f"Bearer {token}"}
    elif attack == "proof-by-another-key":
        headers["DPoP"] = make_proof(
            Key.generate("ES256"), method="GET", url=url, access_token=token
        )
    elif attack == "proof-for-another-url":
        headers["DPoP"] = make_proof(key, method="GET", url=url + "/x", access_token=token)
    elif attack == "proof-for-another-method":
        headers["DPoP"] = make_proof(key, method="POST", url=url, access_token=token)
    elif attack == "proof-without-ath":
        headers["DPoP"] = make_proof(key, method="GET", url=url)
    elif attack == "replayed-proof":
        headers["DPoP"] = make_proof(key, method="GET", url=url, access_token=token)
        assert httpx.get(url, headers=headers, timeout=10).status_code == 200
    elif attack == "two-proofs":
        proof = make_proof(key, method="GET", url=url, access_token=token)
        headers = [("Authorization", f"DPoP {token}"), ("DPoP", proof), ("DPoP", proof)]

    response = httpx.get(url, headers=headers, timeout=10)

    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("DPoP ")
    assert 'algs="EdDSA ES256 RS256"' in challenge
    expected = "invalid_token" if attack in ("as-bearer",) else "invalid_dpop_proof"
    assert f'error="{expected}"' in challenge


@pytest.mark.parametrize("service", SERVICES)
def test_an_unbound_token_cannot_pose_as_dpop(stack: dict[str, Any], service: str) -> None:
    api: Api = stack["api"]
    token = api.service_token(audience="catalog")["access_token"]
    url = f"{stack['services'][service]}/me"
    key = Key.generate("ES256")
    headers = {
        "Authorization": f"DPoP {token}",
        "DPoP": make_proof(key, method="GET", url=url, access_token=token),
    }

    response = httpx.get(url, headers=headers, timeout=10)

    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    bearer = httpx.get(url, headers=api.bearer(token), timeout=10)
    assert bearer.status_code == 200


def test_a_users_bound_token_through_dpop_auth(stack: dict[str, Any]) -> None:
    api: Api = stack["api"]
    key = Key.generate("ES256")
    name, password = api.new_user()
    body = api.token(
        {
            "grant_type": "password",
            "username": name,
            "password": password,
            "client_id": "web",
            "audience": "catalog",
        },
        headers={"DPoP": make_proof(key, method="POST", url=f"{api.url}/oauth/token")},
    ).json()
    assert body["token_type"] == "DPoP"

    with httpx.Client(auth=DPoPAuth(body["access_token"], key), timeout=10) as client:
        response = client.get(f"{stack['services']['fastapi']}/me")

    assert response.status_code == 200, response.text
    assert response.json()["jkt"] == key.thumbprint()
