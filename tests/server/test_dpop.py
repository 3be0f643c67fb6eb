"""DPoP at the token endpoint (RFC 9449): bound tokens, bound refresh tokens, and every bad proof.

Each attack is what a thief or a broken client really sends: a proof replayed,
for another URL or method, stale, unsigned or HMAC-signed, carrying a private
key, signed by another key, or a bound refresh token without its key.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey

from authmesh.dpop import make_proof
from authmesh.jose import Key
from authmesh.server import clients
from support.harness import Api, basic


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _token_url(api: Api) -> str:
    return f"{api.url}/oauth/token"


def _proof(api: Api, key: Key, **kwargs: Any) -> str:
    return make_proof(key, method="POST", url=_token_url(api), **kwargs)


def _login(api: Api, key: Key | None) -> Any:
    name, password = api.new_user()
    headers = {"DPoP": _proof(api, key)} if key else {}
    form = {"grant_type": "password", "username": name, "password": password, "client_id": "web"}
    return api.token(form, headers=headers)


@pytest.fixture
def key() -> Key:
    return Key.generate("ES256")


def test_a_proof_binds_the_access_token_to_the_key(api: Api, key: Key) -> None:
    response = _login(api, key)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    assert _claims(body["access_token"])["cnf"] == {"jkt": key.thumbprint()}


def test_without_a_proof_the_token_is_a_bearer_token(api: Api) -> None:
    body = _login(api, None).json()

    assert body["token_type"] == "Bearer"
    assert "cnf" not in _claims(body["access_token"])


def test_client_credentials_tokens_are_bound_too(api: Api, key: Key) -> None:
    response = api.token(
        {"grant_type": "client_credentials"},
        headers={"Authorization": api.service_basic, "DPoP": _proof(api, key)},
    )

    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    assert _claims(response.json()["access_token"])["cnf"]["jkt"] == key.thumbprint()


def test_a_public_clients_refresh_token_needs_the_same_key(api: Api, key: Key) -> None:
    refresh = _login(api, key).json()["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": "web"}

    without = api.token(form)
    other = api.token(form, headers={"DPoP": _proof(api, Key.generate("EdDSA"))})
    same = api.token(form, headers={"DPoP": _proof(api, key)})

    assert without.status_code == 400 and without.json()["error"] == "invalid_dpop_proof"
    assert other.status_code == 400 and other.json()["error"] == "invalid_dpop_proof"
    assert same.status_code == 200, same.text
    assert _claims(same.json()["access_token"])["cnf"]["jkt"] == key.thumbprint()
    assert same.json()["token_type"] == "DPoP"


def test_a_replayed_proof_is_refused(api: Api, key: Key) -> None:
    proof = _proof(api, key)
    form = {"grant_type": "client_credentials"}
    first = api.token(form, headers={"Authorization": api.service_basic, "DPoP": proof})
    again = api.token(form, headers={"Authorization": api.service_basic, "DPoP": proof})

    assert first.status_code == 200
    assert again.status_code == 400
    assert again.json() == {
        "error": "invalid_dpop_proof",
        "error_description": "the proof was used before",
    }


def _forged(key: Key, header: dict[str, Any], claims: dict[str, Any]) -> str:
    def seg(obj: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=")

    signing_input = seg(header) + b"." + seg(claims)
    signature = base64.urlsafe_b64encode(key.sign(signing_input)).rstrip(b"=")
    return (signing_input + b"." + signature).decode()


def _good_parts(api: Api, key: Key) -> tuple[dict[str, Any], dict[str, Any]]:
    public = {k: v for k, v in key.public().to_jwk().items() if k not in ("kid", "alg", "use")}
    header = {"typ": "dpop+jwt", "alg": key.alg, "jwk": public}
    claims = {
        "jti": str(uuid.uuid4()),
        "htm": "POST",
        "htu": _token_url(api),
        "iat": int(time.time()),
    }
    return header, claims


@pytest.mark.parametrize(
    "attack",
    [
        "another-url",
        "another-method",
        "stale",
        "future",
        "no-jti",
        "wrong-typ",
        "alg-none",
        "hmac",
        "private-key-in-header",
        "signed-by-another-key",
        "ath-at-token-endpoint",
        "garbage",
    ],
)
def test_bad_proofs_are_refused(api: Api, key: Key, attack: str) -> None:
    header, claims = _good_parts(api, key)
    signer = key
    if attack == "another-url":
        claims["htu"] = f"{api.url}/oauth/revoke"
    elif attack == "another-method":
        claims["htm"] = "GET"
    elif attack == "stale":
        claims["iat"] -= 600
    elif attack == "future":
        claims["iat"] += 600
    elif attack == "no-jti":
        del claims["jti"]
    elif attack == "wrong-typ":
        header["typ"] = "JWT"
    elif attack == "alg-none":
        header["alg"] = "none"
    elif attack == "hmac":
        header["alg"] = "HS256"
        signer = Key.generate("HS256")
    elif attack == "private-key-in-header":
        header["jwk"] = {k: v for k, v in key.to_jwk(private=True).items() if k != "kid"}
    elif attack == "signed-by-another-key":
        signer = Key.generate("ES256")
    elif attack == "ath-at-token-endpoint":
        claims["ath"] = "x"
    proof = "not.a.proof" if attack == "garbage" else _forged(signer, header, claims)

    response = api.token(
        {"grant_type": "client_credentials"},
        headers={"Authorization": api.service_basic, "DPoP": proof},
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_dpop_proof"


def test_two_proofs_are_refused(api: Api, key: Key) -> None:
    response = api.http.post(
        "/oauth/token",
        content="grant_type=client_credentials",
        headers=[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", api.service_basic),
            ("DPoP", _proof(api, key)),
            ("DPoP", _proof(api, key)),
        ],
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_dpop_proof"


def test_a_client_that_must_use_dpop_gets_nothing_without_it(api: Api, key: Key) -> None:
    client_id = f"bound-{uuid.uuid4().hex[:8]}"
    made = api.server.call(
        clients.register_client(api.core, client_id=client_id, dpop_bound_access_tokens=True)
    )
    assert made.secret is not None
    credentials = basic(client_id, made.secret)

    refused = api.token(
        {"grant_type": "client_credentials"}, headers={"Authorization": credentials}
    )
    bound = api.token(
        {"grant_type": "client_credentials"},
        headers={"Authorization": credentials, "DPoP": _proof(api, key)},
    )

    assert refused.status_code == 400 and refused.json()["error"] == "invalid_dpop_proof"
    assert bound.status_code == 200 and bound.json()["token_type"] == "DPoP"


def test_a_proof_made_by_another_library_is_accepted(api: Api) -> None:
    # joserfc, not authmesh, makes the proof: the wire format is the RFC's, not ours.
    private = ECKey.generate_key("P-256")
    public = private.as_dict(private=False)
    claims = {
        "jti": str(uuid.uuid4()),
        "htm": "POST",
        "htu": _token_url(api),
        "iat": int(time.time()),
    }
    proof = jws.serialize_compact(
        {"typ": "dpop+jwt", "alg": "ES256", "jwk": public},
        json.dumps(claims).encode(),
        private,
    )

    response = api.token(
        {"grant_type": "client_credentials"},
        headers={"Authorization": api.service_basic, "DPoP": proof},
    )

    assert response.status_code == 200, response.text
    assert _claims(response.json()["access_token"])["cnf"]["jkt"] == private.thumbprint()


def test_the_servers_own_apis_honour_the_binding(api: Api, key: Key) -> None:
    token = _login(api, key).json()["access_token"]
    url = f"{api.url}/userinfo"

    as_bearer = api.http.get("/userinfo", headers=api.bearer(token))
    with_proof = api.http.get(
        "/userinfo",
        headers={
            "Authorization": f"DPoP {token}",
            "DPoP": make_proof(key, method="GET", url=url, access_token=token),
        },
    )
    foreign = api.http.get(
        "/userinfo",
        headers={
            "Authorization": f"DPoP {token}",
            "DPoP": make_proof(Key.generate("ES256"), method="GET", url=url, access_token=token),
        },
    )

    assert as_bearer.status_code == 401
    assert as_bearer.headers["www-authenticate"].startswith("DPoP ")
    assert 'error="invalid_token"' in as_bearer.headers["www-authenticate"]
    assert with_proof.status_code == 200, with_proof.text
    assert foreign.status_code == 401
    assert 'error="invalid_dpop_proof"' in foreign.headers["www-authenticate"]
