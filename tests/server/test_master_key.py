"""Safe defaults: a master key kept in the data folder, owner-only files, and
plaintext signing keys of an older install sealed at start."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from authmesh.errors import ConfigError
from authmesh.server.context import ServerContext
from authmesh.server.master_key import MASTER_KEY_FILE
from authmesh.server.secrets import KeyEncryptor
from authmesh.store.models import SigningKeyRow
from authmesh.store.private_files import file_mode, private_dir, write_private_file
from authmesh.testing.authserver import settings_for
from authmesh.testing.databases import DbTarget, database
from support.harness import Api, header_of, launch


def _key_rows(api: Api) -> list[SigningKeyRow]:
    async def read() -> list[SigningKeyRow]:
        async with api.core.db.transaction() as session:
            return list((await session.execute(select(SigningKeyRow))).scalars().all())

    return api.server.call(read())


async def _start_context(target: DbTarget, **overrides: object) -> None:
    ctx = ServerContext.build(settings_for(target, **overrides))
    try:
        await ctx.start()
    finally:
        await ctx.close()


def test_without_a_master_key_one_is_made_in_the_data_folder_and_seals_the_keys(
    start_server: Callable[..., Api], tmp_path: Path
) -> None:
    data = tmp_path / "fresh"
    api = start_server(data_dir=data)

    master = data / MASTER_KEY_FILE
    assert file_mode(master) == 0o600
    assert file_mode(data) == 0o700
    (row,) = _key_rows(api)
    assert row.encrypted is True
    assert '"d"' not in row.private_jwk
    opened = KeyEncryptor(master.read_text().strip()).decrypt(row.private_jwk, aad=row.kid)
    assert opened["x"] == row.public_jwk["x"]

    # A restart on the same folder keeps the key and signs with the same signing key.
    written = master.read_text()
    token = api.login()["access_token"]
    api.server.stop()
    again = start_server(seed=False, data_dir=data, port=api.server.settings.port)
    again.service_secret = api.service_secret
    assert master.read_text() == written
    assert header_of(again.login()["access_token"])["kid"] == row.kid
    assert again.introspect(token)["active"] is True


def test_plaintext_keys_of_an_existing_database_are_sealed_at_start(
    start_server: Callable[..., Api], tmp_path: Path
) -> None:
    data = tmp_path / "old-install"
    old = start_server(data_dir=data, insecure_plaintext_keys=True)
    (plain,) = _key_rows(old)
    assert plain.encrypted is False
    assert not (data / MASTER_KEY_FILE).exists()
    token = old.login()["access_token"]
    old.server.stop()

    upgraded = start_server(seed=False, data_dir=data, port=old.server.settings.port)
    upgraded.service_secret = old.service_secret

    (sealed,) = _key_rows(upgraded)
    assert (sealed.kid, sealed.encrypted) == (plain.kid, True)
    master = (data / MASTER_KEY_FILE).read_text().strip()
    assert KeyEncryptor(master).decrypt(sealed.private_jwk, aad=sealed.kid) == json.loads(
        plain.private_jwk
    )
    # Tokens it signed before stay valid, and it still signs with the same key.
    assert upgraded.introspect(token)["active"] is True
    assert header_of(upgraded.login()["access_token"])["kid"] == plain.kid


def test_with_plaintext_chosen_an_existing_master_key_is_still_used(
    start_server: Callable[..., Api], tmp_path: Path
) -> None:
    data = tmp_path / "keyed"
    api = start_server(data_dir=data)
    api.server.stop()

    again = start_server(seed=False, data_dir=data, insecure_plaintext_keys=True)
    new_kid = again.server.call(again.core.keys.rotate()).kid

    assert all(row.encrypted for row in _key_rows(again))
    assert new_kid in {row.kid for row in _key_rows(again)}


async def test_sealed_keys_without_their_master_key_fail_clearly_and_leave_no_new_key(
    db: DbTarget, tmp_path: Path
) -> None:
    data = tmp_path / "first"
    await _start_context(db, data_dir=data)
    kid_file = data / MASTER_KEY_FILE
    assert kid_file.is_file()
    elsewhere = tmp_path / "elsewhere"

    with pytest.raises(ConfigError, match=r"^signing key \S+ is encrypted: set AUTHMESH_"):
        await _start_context(db, data_dir=elsewhere)
    assert not (elsewhere / MASTER_KEY_FILE).exists()

    write_private_file(private_dir(elsewhere) / MASTER_KEY_FILE, "a different key, long enough\n")
    with pytest.raises(ConfigError) as wrong:
        await _start_context(db, data_dir=elsewhere)
    assert f"the master key in {elsewhere / MASTER_KEY_FILE} is wrong" in str(wrong.value)


def test_a_new_sqlite_database_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "sqlite-data"
    with database("sqlite", data) as target:
        api = launch(target)
        try:
            api.login()
            # While it runs: the WAL and shared-memory files SQLite made beside it.
            modes = {p.name: file_mode(p) for p in data.iterdir() if p.name.startswith("authmesh")}
        finally:
            api.close()
            api.server.stop()

    assert file_mode(data) == 0o700
    assert modes == {name: 0o600 for name in ("authmesh.db", "authmesh.db-wal", "authmesh.db-shm")}


def test_the_master_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / MASTER_KEY_FILE

    assert write_private_file(path, "first key, long enough\n") is True
    assert write_private_file(path, "second key, long enough\n") is False

    assert path.read_text() == "first key, long enough\n"
    assert file_mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [MASTER_KEY_FILE]
