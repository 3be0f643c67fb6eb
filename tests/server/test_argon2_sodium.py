"""libsodium's Argon2id: the same PHC strings as argon2-cffi, both ways, and where each is used."""

from __future__ import annotations

from typing import Any

import argon2
import pytest

from authmesh.server import argon2_sodium
from authmesh.server.passwords import PasswordHasher, PasswordParams

PASSWORD = "correct horse battery staple"
#: The production shape (16-byte salt, 32-byte hash, one lane) at a cost fit for tests.
CHEAP_PRODUCTION_SHAPE = PasswordParams(time_cost=1, memory_cost=64, parallelism=1)


class Calls:
    def __init__(self) -> None:
        self.sodium: list[str] = []
        self.cffi: list[str] = []


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    seen = Calls()
    real_sodium, real_cffi = argon2_sodium.verify_password, argon2.PasswordHasher.verify

    def sodium(hash: str, password: bytes) -> bool:
        seen.sodium.append(hash)
        return real_sodium(hash, password)

    def cffi(inner: argon2.PasswordHasher, hash: str, password: Any) -> bool:
        seen.cffi.append(hash)
        return real_cffi(inner, hash, password)

    monkeypatch.setattr(argon2_sodium, "verify_password", sodium)
    monkeypatch.setattr(argon2.PasswordHasher, "verify", cffi)
    return seen


def test_libsodium_hashes_are_argon2id_strings_that_argon2_cffi_verifies() -> None:
    params = CHEAP_PRODUCTION_SHAPE.to_argon2()
    assert argon2_sodium.can_hash(params)
    encoded = argon2_sodium.hash_password(PASSWORD.encode(), params)
    assert argon2.extract_parameters(encoded) == params
    assert argon2.PasswordHasher.from_parameters(params).verify(encoded, PASSWORD)


def test_argon2_cffi_hashes_verify_with_libsodium() -> None:
    cffi = argon2.PasswordHasher.from_parameters(PasswordParams.fast().to_argon2())
    encoded = cffi.hash(PASSWORD)
    assert argon2_sodium.can_verify(encoded, argon2.extract_parameters(encoded))
    assert argon2_sodium.verify_password(encoded, PASSWORD.encode()) is True
    assert argon2_sodium.verify_password(encoded, b"correct horse battery stapler") is False


def test_production_hasher_hashes_and_verifies_with_libsodium(calls: Calls) -> None:
    hasher = PasswordHasher(CHEAP_PRODUCTION_SHAPE)
    encoded = hasher.hash(PASSWORD)
    assert hasher.verify(encoded, PASSWORD) is True
    assert hasher.verify(encoded, PASSWORD.upper()) is False
    assert calls.sodium == [encoded, encoded] and calls.cffi == []
    assert not hasher.needs_rehash(encoded)


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("two lanes", argon2.Parameters(argon2.Type.ID, 19, 16, 32, 1, 64, 2)),
        ("argon2i", argon2.Parameters(argon2.Type.I, 19, 16, 32, 3, 64, 1)),
        ("argon2d", argon2.Parameters(argon2.Type.D, 19, 16, 32, 1, 64, 1)),
    ],
)
def test_hashes_libsodium_cannot_verify_go_to_argon2_cffi(
    calls: Calls, kind: str, params: argon2.Parameters
) -> None:
    encoded = argon2.PasswordHasher.from_parameters(params).hash(PASSWORD)
    hasher = PasswordHasher(CHEAP_PRODUCTION_SHAPE)
    assert hasher.verify(encoded, PASSWORD) is True
    assert hasher.verify(encoded, "wrong") is False
    assert calls.cffi == [encoded, encoded] and calls.sodium == []
    assert hasher.needs_rehash(encoded)


def test_parameters_libsodium_cannot_make_are_hashed_by_argon2_cffi() -> None:
    for params in (
        PasswordParams.fast(),
        PasswordParams(time_cost=1, memory_cost=64, parallelism=2),
    ):
        assert not argon2_sodium.can_hash(params.to_argon2())
        encoded = PasswordHasher(params).hash(PASSWORD)
        assert argon2.extract_parameters(encoded) == params.to_argon2()
