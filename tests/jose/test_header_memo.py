"""The verify path remembers parsed headers; the policy's rules still apply to each token.

A header segment seen before skips base64url, JSON and the policy-free header
rules, never the rules that depend on the policy or the key set: allowed
algorithms, ``typ``, ``kid`` → key and the key's algorithm binding.
"""

from __future__ import annotations

import time

import pytest

from authmesh.jose import (
    AlgNotAllowed,
    Key,
    KeySet,
    UnknownKid,
    VerifyPolicy,
    WrongType,
    sign_jwt,
    verify_jwt,
)
from authmesh.jose import jws as jws_module

ISSUER = "https://issuer.example"


def _claims() -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "sub": "alice",
        "aud": "orders",
        "exp": now + 300,
        "iat": now,
        "jti": "j1",
        "client_id": "web",
    }


@pytest.fixture
def key() -> Key:
    return Key.generate("EdDSA")


def _policy(**overrides: object) -> VerifyPolicy:
    values: dict[str, object] = {
        "issuer": ISSUER,
        "audience": frozenset({"orders"}),
        "algorithms": frozenset({"EdDSA", "ES256"}),
    }
    values.update(overrides)
    return VerifyPolicy(**values)  # type: ignore[arg-type]


def test_a_remembered_header_still_meets_each_policy(key: Key) -> None:
    token = sign_jwt(_claims(), key, typ="at+jwt")
    keys = KeySet([key.public()])
    verify_jwt(token, keys, _policy())
    assert token.split(".")[0].encode() in jws_module._HEADER_MEMO
    with pytest.raises(AlgNotAllowed):
        verify_jwt(token, keys, _policy(algorithms=frozenset({"ES256"})))
    with pytest.raises(WrongType):
        verify_jwt(token, keys, _policy(types=frozenset({"JWT"})))
    with pytest.raises(UnknownKid):
        verify_jwt(token, KeySet([Key.generate("EdDSA").public()]), _policy())


def test_a_remembered_header_still_needs_the_key_bound_to_its_alg(key: Key) -> None:
    token = sign_jwt(_claims(), key, typ="at+jwt")
    verify_jwt(token, KeySet([key.public()]), _policy())
    other = Key.generate("ES256", kid=key.kid)
    with pytest.raises(AlgNotAllowed):
        verify_jwt(token, KeySet([other.public()]), _policy())


def test_the_caller_gets_its_own_header(key: Key) -> None:
    token = sign_jwt(_claims(), key, typ="at+jwt")
    keys = KeySet([key.public()])
    first = verify_jwt(token, keys, _policy()).header
    first["alg"] = "none"
    first["jku"] = "https://attacker.example/jwks"
    again = verify_jwt(token, keys, _policy()).header
    assert again == {"alg": "EdDSA", "kid": key.kid, "typ": "at+jwt"}


def test_only_flat_headers_are_remembered_and_the_memo_is_bounded(key: Key) -> None:
    keys = KeySet([key.public()])
    nested = sign_jwt(_claims(), key, typ="at+jwt", headers={"x-extra": {"a": 1}})
    verify_jwt(nested, keys, _policy())
    assert nested.split(".")[0].encode() not in jws_module._HEADER_MEMO
    for i in range(jws_module._HEADER_MEMO_SIZE * 2):
        token = sign_jwt(_claims(), key, typ="at+jwt", headers={"x-n": str(i)})
        verify_jwt(token, keys, _policy())
        assert len(jws_module._HEADER_MEMO) <= jws_module._HEADER_MEMO_SIZE
