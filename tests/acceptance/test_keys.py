"""Signing keys seen from a service: forged ``kid`` floods and key rotation.

JWKS requests are counted at the auth server itself (a counting middleware in
front of its app), not in the SDK.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from authmesh.jose import Key, sign_jwt
from authmesh.testing import wait_for
from authmesh.testing.databases import DbTarget
from support.acceptance import Issuer, run_service, run_services, service_config, start_issuer
from support.databases import db_target
from support.harness import claims_of, header_of

JWKS = "/.well-known/jwks.json"
#: A rotation publishes the new key this long before it signs; JWKS may be cached half that.
PUBLISH_AHEAD = 2
JWKS_MAX_AGE = 1


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Issuer, DbTarget]]:
    with db_target("sqlite", tmp_path_factory.mktemp("keys")) as target:
        issuer = start_issuer(
            target, key_publish_ahead=PUBLISH_AHEAD, jwks_max_age=JWKS_MAX_AGE, feed_heartbeat=1
        )
        try:
            yield issuer, target
        finally:
            issuer.stop()


@pytest.mark.parametrize("framework", ["fastapi", "flask"])
def test_a_flood_of_unknown_kids_stays_within_the_jwks_rate_limit(
    keyed: tuple[Issuer, DbTarget], framework: str
) -> None:
    issuer, _ = keyed
    interval = 1.0
    config = service_config(
        issuer.url, issuer.api.service_secret, jwks_min_refetch_interval=interval
    )
    stranger = Key.generate("EdDSA")
    real = str(issuer.api.login()["access_token"])
    claims = claims_of(real)
    with run_service(framework, config) as service:
        assert service.accepts(real)
        before = issuer.counts[JWKS]
        started = time.monotonic()
        flood = 0
        while time.monotonic() - started < 2.5:
            forged_key = Key.from_jwk({**stranger.to_jwk(private=True), "kid": uuid.uuid4().hex})
            forged = sign_jwt({**claims, "jti": uuid.uuid4().hex}, forged_key, typ="at+jwt")
            response = service.whoami(forged)
            assert response.status_code == 401
            assert 'error="invalid_token"' in response.headers["www-authenticate"]
            flood += 1
        elapsed = time.monotonic() - started
        fetches = issuer.counts[JWKS] - before
        allowed = math.floor(elapsed / interval) + 1
        print(f"{framework}: {flood} forged kids in {elapsed:.2f} s -> {fetches} JWKS fetches")
        assert flood >= 100, "the flood was too small to tell"
        assert fetches <= allowed, f"{fetches} JWKS fetches in {elapsed:.2f} s"
        assert service.accepts(real)  # the real key is still there


def _rotate(target: DbTarget) -> str:
    """``authmesh keys rotate`` on the server's database, as an operator runs it."""
    exe = Path(sys.executable).parent / "authmesh"
    env = {
        **os.environ,
        "AUTHMESH_DATABASE_URL": target.url,
        "AUTHMESH_DATA_DIR": str(target.data_dir),  # where the server keeps its master key
        "AUTHMESH_KEY_PUBLISH_AHEAD": str(PUBLISH_AHEAD),
        "AUTHMESH_JWKS_MAX_AGE": str(JWKS_MAX_AGE),
    }
    result = subprocess.run(
        [str(exe), "keys", "rotate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "published" in result.stdout
    return result.stdout.split()[2]


def test_key_rotation_is_picked_up_without_rejecting_a_valid_token(
    keyed: tuple[Issuer, DbTarget],
) -> None:
    issuer, target = keyed
    api = issuer.api
    config = service_config(api.url, api.service_secret, jwks_min_refetch_interval=0.5)
    with run_services(config) as running:
        services = list(running.values())
        old = str(api.login()["access_token"])
        old_kid = header_of(old)["kid"]
        for service in services:
            assert service.accepts(old)

        new_kid = _rotate(target)
        assert new_kid != old_kid

        # Log in and use the token everywhere, all through the hand-over.
        seen: set[str] = set()
        deadline = time.monotonic() + PUBLISH_AHEAD + 5
        while new_kid not in seen or len(seen) < 2:
            assert time.monotonic() < deadline, "the new key never signed"
            token = str(api.login()["access_token"])
            seen.add(header_of(token)["kid"])
            for service in services:
                response = service.whoami(token)
                assert response.status_code == 200, (service.framework, response.text)
            time.sleep(0.05)
        for service in services:
            assert new_kid in service.auth.keys.kids
            assert service.accepts(old)  # the retired key verifies until its tokens expire
        wait_for(lambda: {k["kid"] for k in api.jwks()["keys"]} == {old_kid, new_kid})
