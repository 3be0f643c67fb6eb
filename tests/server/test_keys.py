"""Signing keys: the JWKS, rotation, replicas agreeing, and encryption at rest."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from authmesh.errors import ConfigError
from authmesh.server.context import ServerContext
from authmesh.server.secrets import KeyEncryptor
from authmesh.store.models import SigningKeyRow
from authmesh.testing import FakeClock
from authmesh.testing.authserver import settings_for
from authmesh.testing.databases import DbTarget
from support.harness import PRIVATE_MEMBERS, Api, header_of

MASTER = "correct horse battery staple 42"
KTY = {"EdDSA": "OKP", "ES256": "EC", "RS256": "RSA"}


def _key_rows(api: Api) -> list[SigningKeyRow]:
    async def read() -> list[SigningKeyRow]:
        async with api.core.db.transaction() as session:
            return list((await session.execute(select(SigningKeyRow))).scalars().all())

    return api.server.call(read())


def _rotate(api: Api) -> str:
    return api.server.call(api.core.keys.rotate()).kid


def _assert_public_only(jwks: dict[str, Any]) -> None:
    assert set(jwks) == {"keys"}
    for jwk in jwks["keys"]:
        assert not PRIVATE_MEMBERS & set(jwk), jwk
        assert jwk["use"] == "sig"
        assert jwk["kid"]


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
def test_jwks_never_contains_private_members(start_server: Callable[..., Api], alg: str) -> None:
    api = start_server(signing_alg=alg)

    first = api.jwks()
    _rotate(api)
    second = api.jwks()

    for jwks in (first, second):
        _assert_public_only(jwks)
        assert {jwk["alg"] for jwk in jwks["keys"]} == {alg}
        assert {jwk["kty"] for jwk in jwks["keys"]} == {KTY[alg]}
    assert len(first["keys"]) == 1
    assert len(second["keys"]) == 2
    token = api.login()["access_token"]
    assert header_of(token)["alg"] == alg
    assert api.verify(token, audience="orders")["sub"]
    discovery = api.http.get("/.well-known/openid-configuration").json()
    assert discovery["access_token_signing_alg_values_supported"] == [alg]


def test_hs256_publishes_no_key_at_all(start_server: Callable[..., Api]) -> None:
    api = start_server(signing_alg="HS256")

    jwks = api.jwks()

    assert jwks == {"keys": []}
    token = api.login()["access_token"]
    assert header_of(token)["alg"] == "HS256"
    assert api.userinfo(token).status_code == 200


def test_jwks_is_cacheable_for_jwks_max_age(start_server: Callable[..., Api]) -> None:
    api = start_server(jwks_max_age=120, key_publish_ahead=600)

    response = api.http.get("/.well-known/jwks.json")

    assert response.headers["cache-control"] == "public, max-age=120"


def test_rotation_publishes_ahead_then_signs_and_old_tokens_still_verify(
    start_server: Callable[..., Api],
) -> None:
    api = start_server(key_publish_ahead=2, jwks_max_age=1)
    old_kid = api.jwks()["keys"][0]["kid"]
    before = api.login()["access_token"]
    assert header_of(before)["kid"] == old_kid

    new_kid = _rotate(api)

    # Published at once, but not signing yet.
    assert {k["kid"] for k in api.jwks()["keys"]} == {old_kid, new_kid}
    during = api.login()["access_token"]
    assert header_of(during)["kid"] == old_kid
    time.sleep(2.1)
    after = api.login()["access_token"]
    assert header_of(after)["kid"] == new_kid
    # A JWKS-based verifier accepts tokens of both keys after the rotation.
    jwks = api.jwks()
    assert {k["kid"] for k in jwks["keys"]} == {old_kid, new_kid}
    _assert_public_only(jwks)
    for token in (before, during, after):
        assert api.verify(token, audience="orders")["iss"] == api.url
        assert api.userinfo(token).status_code == 200
    states = {k.kid: k.state for k in api.core.keys.describe()}
    assert states == {old_kid: "retired", new_kid: "active"}


def test_two_replicas_agree_on_the_active_key(start_server: Callable[..., Api]) -> None:
    first = start_server(key_publish_ahead=2, jwks_max_age=1)
    second = start_server(seed=False, key_publish_ahead=2, jwks_max_age=1)
    old_kid = first.jwks()["keys"][0]["kid"]
    assert second.jwks() == first.jwks()
    assert header_of(second.login()["access_token"])["kid"] == old_kid

    new_kid = _rotate(first)
    time.sleep(2.5)

    assert header_of(first.login()["access_token"])["kid"] == new_kid
    assert header_of(second.login()["access_token"])["kid"] == new_kid
    assert second.jwks() == first.jwks()
    assert {k["kid"] for k in second.jwks()["keys"]} == {old_kid, new_kid}


def test_private_keys_are_encrypted_at_rest_with_a_master_key(
    start_server: Callable[..., Api],
) -> None:
    api = start_server(master_key=MASTER)

    rows = _key_rows(api)

    assert len(rows) == 1
    row = rows[0]
    assert row.encrypted is True
    assert '"d"' not in row.private_jwk
    with pytest.raises(ValueError):
        json.loads(row.private_jwk)
    assert row.public_jwk["x"] not in row.private_jwk
    assert not PRIVATE_MEMBERS & set(row.public_jwk)
    # It is the real key, sealed under the master key and bound to its kid.
    jwk = KeyEncryptor(MASTER).decrypt(row.private_jwk, aad=row.kid)
    assert jwk["x"] == row.public_jwk["x"]
    assert jwk["d"]
    with pytest.raises(ConfigError):
        KeyEncryptor(MASTER).decrypt(row.private_jwk, aad="another-kid")


def test_keys_are_stored_plain_only_when_the_operator_chose_it(
    start_server: Callable[..., Api],
) -> None:
    api = start_server(insecure_plaintext_keys=True)

    (row,) = _key_rows(api)

    assert row.encrypted is False
    assert "d" in json.loads(row.private_jwk)


def test_restart_with_the_same_master_key_keeps_working(
    start_server: Callable[..., Api],
) -> None:
    api = start_server(master_key=MASTER)
    kid = api.jwks()["keys"][0]["kid"]
    token = api.login()["access_token"]
    api.server.stop()

    # Same port, so the same issuer: the old token must stay valid.
    again = start_server(seed=False, master_key=MASTER, port=api.server.settings.port)
    again.service_secret = api.service_secret

    assert [k["kid"] for k in again.jwks()["keys"]] == [kid]
    assert header_of(again.login()["access_token"])["kid"] == kid
    assert again.introspect(token)["active"] is True
    new_kid = _rotate(again)
    assert next(r for r in _key_rows(again) if r.kid == new_kid).encrypted is True


async def _start_context(target: DbTarget, **overrides: Any) -> None:
    ctx = ServerContext.build(settings_for(target, **overrides))
    try:
        await ctx.start()
    finally:
        await ctx.close()


async def test_a_wrong_master_key_fails_with_a_clear_config_error(
    start_server: Callable[..., Api], db: DbTarget
) -> None:
    api = start_server(master_key=MASTER)
    (kid,) = [k["kid"] for k in api.jwks()["keys"]]
    api.server.stop()

    with pytest.raises(ConfigError) as wrong:
        await _start_context(db, master_key="an entirely different key")
    with pytest.raises(ConfigError) as missing:
        await _start_context(db)

    assert str(wrong.value) == (
        f"cannot decrypt signing key {kid}: AUTHMESH_MASTER_KEY is wrong or the stored key "
        "was altered"
    )
    assert str(missing.value) == (
        f"signing key {kid} is encrypted: set AUTHMESH_MASTER_KEY (or --data-dir to the "
        "folder holding master.key) to use it"
    )
    # And the right key still opens it.
    await _start_context(db, master_key=MASTER)


def test_a_too_short_master_key_is_refused(db: DbTarget) -> None:
    with pytest.raises(ConfigError, match="at least 16 characters"):
        ServerContext.build(settings_for(db, master_key="short"))


def test_a_retired_key_leaves_the_jwks_once_its_last_token_expired(
    start_server: Callable[..., Api],
) -> None:
    clock = FakeClock()
    api = start_server(clock=clock, key_publish_ahead=60, jwks_max_age=60)
    old_kid = api.jwks()["keys"][0]["kid"]
    old_token = api.login()["access_token"]
    new_kid = _rotate(api)

    clock.now += 60 + 600 + 30 - 1  # activation + token lifetime + leeway, almost
    assert {k["kid"] for k in api.jwks()["keys"]} == {old_kid, new_kid}
    clock.now += 2

    assert [k["kid"] for k in api.jwks()["keys"]] == [new_kid]
    states = {k.kid: k.state for k in api.core.keys.describe()}
    assert states == {old_kid: "expired", new_kid: "active"}
    assert api.userinfo(old_token).status_code == 401
    assert header_of(api.login()["access_token"])["kid"] == new_kid
