"""Argon2id hashing, rehash detection, the dummy path and the password policy."""

from __future__ import annotations

import threading
import time
import unicodedata
from collections.abc import Iterator
from typing import Any

import argon2
import pytest
from argon2.profiles import RFC_9106_LOW_MEMORY

import authmesh.server.passwords as passwords_module
from authmesh.errors import AuthmeshError, ConfigError
from authmesh.server import argon2_sodium
from authmesh.server.passwords import (
    COMMON_PASSWORDS,
    MAX_PASSWORD_LENGTH,
    PasswordHasher,
    PasswordParams,
    PasswordPolicy,
    WeakPassword,
)

PASSWORD = "tr0ub4dor&3-horse"


@pytest.fixture
def hasher() -> Iterator[PasswordHasher]:
    h = PasswordHasher(PasswordParams.fast())
    yield h
    h.close()


class VerifySpy:
    """Records every Argon2 verification, by libsodium or argon2-cffi (hash and thread)."""

    def __init__(self) -> None:
        self.hashes: list[str] = []
        self.threads: list[threading.Thread] = []


@pytest.fixture
def verify_spy(monkeypatch: pytest.MonkeyPatch) -> VerifySpy:
    spy = VerifySpy()
    real_cffi = argon2.PasswordHasher.verify
    real_sodium = argon2_sodium.verify_password

    def record(hash: str) -> None:
        spy.hashes.append(hash)
        spy.threads.append(threading.current_thread())

    def spying_cffi(inner: argon2.PasswordHasher, hash: str, password: Any) -> bool:
        record(hash)
        return real_cffi(inner, hash, password)

    def spying_sodium(hash: str, password: bytes) -> bool:
        record(hash)
        return real_sodium(hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spying_cffi)
    monkeypatch.setattr(argon2_sodium, "verify_password", spying_sodium)
    return spy


def test_exports_are_all() -> None:
    public = {n for n in vars(passwords_module) if not n.startswith("_")}
    exported = set(passwords_module.__all__)
    assert exported <= public
    assert sorted(passwords_module.__all__) == passwords_module.__all__
    assert {"PasswordHasher", "PasswordParams", "PasswordPolicy", "WeakPassword"} <= exported


# -- parameters -------------------------------------------------------------------


def test_default_params_are_owasp_argon2id() -> None:
    params = PasswordParams().to_argon2()
    # OWASP Password Storage Cheat Sheet: m=7 MiB, t=5, p=1 (Keycloak's default too).
    assert (params.memory_cost, params.time_cost, params.parallelism) == (7168, 5, 1)
    assert (params.hash_len, params.salt_len) == (32, 16)
    assert params.type is argon2.Type.ID
    assert params.version == RFC_9106_LOW_MEMORY.version


def test_server_settings_default_to_the_same_params() -> None:
    from authmesh.server.config import ServerSettings

    settings = ServerSettings()
    assert (
        PasswordParams(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost,
            parallelism=settings.argon2_parallelism,
        )
        == PasswordParams()
    )


def test_default_hasher_uses_default_params() -> None:
    assert PasswordHasher().params == PasswordParams()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"time_cost": 0},
        {"parallelism": 0},
        {"memory_cost": 7, "parallelism": 1},
        {"memory_cost": 31, "parallelism": 4},
        {"hash_len": 8},
        {"salt_len": 4},
    ],
    ids=["time0", "parallelism0", "memory-below-8", "memory-below-8p", "short-tag", "short-salt"],
)
def test_params_reject_unusable_values(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        PasswordParams(**kwargs)


def test_params_are_frozen_and_keyword_only() -> None:
    params = PasswordParams.fast()
    with pytest.raises(AttributeError):
        params.time_cost = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        PasswordParams(1, 8, 1)  # type: ignore[misc]


# -- hash and verify --------------------------------------------------------------


def test_round_trip(hasher: PasswordHasher) -> None:
    encoded = hasher.hash(PASSWORD)
    assert encoded.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert hasher.verify(encoded, PASSWORD) is True


def test_same_password_hashes_differently(hasher: PasswordHasher) -> None:
    assert hasher.hash(PASSWORD) != hasher.hash(PASSWORD)


@pytest.mark.parametrize(
    "attempt",
    [PASSWORD + "x", PASSWORD.upper(), PASSWORD[:-1], "", " " + PASSWORD],
    ids=["suffix", "case", "truncated", "empty", "leading-space"],
)
def test_wrong_password_is_false(hasher: PasswordHasher, attempt: str) -> None:
    assert hasher.verify(hasher.hash(PASSWORD), attempt) is False


def test_unicode_is_normalised(hasher: PasswordHasher) -> None:
    composed = "caf\u00e9-au-lait-42"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert hasher.verify(hasher.hash(composed), decomposed) is True


def _flip_last(encoded: str) -> str:
    return encoded[:-1] + ("A" if encoded[-1] != "A" else "B")


CORRUPTED = [
    ("empty", lambda h: ""),
    ("not-a-hash", lambda h: "hunter2"),
    ("truncated", lambda h: h[: len(h) // 2]),
    ("tag-changed", _flip_last),
    ("no-tag", lambda h: h.rsplit("$", 1)[0]),
    ("bad-base64-salt", lambda h: h.replace("$", "$!!", 4)),
    ("absurd-memory", lambda h: h.replace("m=8", "m=99999999999")),
    ("bcrypt", lambda h: "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"),
    ("non-ascii", lambda h: h + "\u00e9"),
]


@pytest.mark.parametrize("corrupt", [c[1] for c in CORRUPTED], ids=[c[0] for c in CORRUPTED])
def test_corrupted_hash_is_false_never_raises(
    hasher: PasswordHasher, verify_spy: VerifySpy, corrupt: Any
) -> None:
    bad = corrupt(hasher.hash(PASSWORD))
    assert hasher.verify(bad, PASSWORD) is False
    # A corrupted hash still costs one real verification: its own when argon2 can
    # read it (a changed tag is a plain mismatch), else the dummy's (after a try
    # when only argon2-cffi's verification finds the fault).
    assert verify_spy.hashes in ([bad], [hasher.dummy_hash], [bad, hasher.dummy_hash])


def test_account_without_password_is_false_and_costs_a_verification(
    hasher: PasswordHasher, verify_spy: VerifySpy
) -> None:
    assert hasher.verify(None, PASSWORD) is False
    assert verify_spy.hashes == [hasher.dummy_hash]


def test_overlong_password_refused(hasher: PasswordHasher) -> None:
    huge = "a" * (MAX_PASSWORD_LENGTH + 1)
    with pytest.raises(WeakPassword):
        hasher.hash(huge)
    encoded = hasher.hash("a" * MAX_PASSWORD_LENGTH)
    assert hasher.verify(encoded, huge) is False
    assert hasher.verify_dummy(huge) is False


# -- rehash -----------------------------------------------------------------------


def test_rehash_not_needed_for_own_params(hasher: PasswordHasher) -> None:
    assert hasher.needs_rehash(hasher.hash(PASSWORD)) is False


@pytest.mark.parametrize(
    "changed",
    [
        {"time_cost": 2},
        {"memory_cost": 16},
        {"parallelism": 2, "memory_cost": 16},
        {"hash_len": 32},
    ],
    ids=["time", "memory", "parallelism", "hash-len"],
)
def test_rehash_detected_when_params_change(changed: dict[str, int]) -> None:
    old = PasswordHasher(PasswordParams.fast())
    fast = PasswordParams.fast()
    new = PasswordHasher(
        PasswordParams(
            **{
                "time_cost": fast.time_cost,
                "memory_cost": fast.memory_cost,
                "parallelism": fast.parallelism,
                "hash_len": fast.hash_len,
                "salt_len": fast.salt_len,
                **changed,
            }
        )
    )
    encoded = old.hash(PASSWORD)
    # The old hash still verifies under the new hasher: that is what makes a
    # transparent rehash on login possible.
    assert new.verify(encoded, PASSWORD) is True
    assert new.needs_rehash(encoded) is True
    assert new.needs_rehash(new.hash(PASSWORD)) is False


def test_rehash_detected_for_other_argon2_type(hasher: PasswordHasher) -> None:
    fast = PasswordParams.fast()
    argon2i = argon2.PasswordHasher(
        time_cost=fast.time_cost,
        memory_cost=fast.memory_cost,
        parallelism=fast.parallelism,
        hash_len=fast.hash_len,
        salt_len=fast.salt_len,
        type=argon2.Type.I,
    ).hash(PASSWORD)
    assert hasher.verify(argon2i, PASSWORD) is True
    assert hasher.needs_rehash(argon2i) is True


def test_unreadable_hash_needs_rehash(hasher: PasswordHasher) -> None:
    assert hasher.needs_rehash("garbage") is True


# -- dummy verification -----------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [PasswordParams.fast(), PasswordParams(time_cost=2, memory_cost=64, parallelism=2)],
    ids=["fast", "custom"],
)
def test_dummy_hash_has_the_same_cost_as_real_hashes(params: PasswordParams) -> None:
    h = PasswordHasher(params)
    real = argon2.extract_parameters(h.hash(PASSWORD))
    dummy = argon2.extract_parameters(h.dummy_hash)
    assert dummy == real == params.to_argon2()


def test_dummy_verification_runs_argon2(hasher: PasswordHasher, verify_spy: VerifySpy) -> None:
    assert hasher.verify_dummy(PASSWORD) is False
    assert hasher.verify_dummy("") is False
    assert verify_spy.hashes == [hasher.dummy_hash, hasher.dummy_hash]


def test_dummy_hash_is_made_once(hasher: PasswordHasher) -> None:
    first = hasher.dummy_hash
    hasher.verify_dummy(PASSWORD)
    assert hasher.dummy_hash is first
    assert PasswordHasher(PasswordParams.fast()).dummy_hash != first


# -- async variants ---------------------------------------------------------------


async def test_async_variants_run_off_the_event_loop_thread(
    hasher: PasswordHasher, verify_spy: VerifySpy
) -> None:
    encoded = await hasher.ahash(PASSWORD)
    assert await hasher.averify(encoded, PASSWORD) is True
    assert await hasher.averify(encoded, "nope") is False
    assert await hasher.averify("corrupt", PASSWORD) is False
    assert await hasher.averify_dummy(PASSWORD) is False
    loop_thread = threading.current_thread()
    assert verify_spy.threads
    assert all(t is not loop_thread for t in verify_spy.threads)
    assert all(t.name.startswith("authmesh-argon2") for t in verify_spy.threads)


async def test_async_concurrency_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    h = PasswordHasher(PasswordParams.fast(), max_concurrency=2)
    encoded = h.hash(PASSWORD)
    h.dummy_hash  # noqa: B018 - made before the spy counts
    active = 0
    peak = 0
    lock = threading.Lock()
    real = argon2_sodium.verify_password

    def slow_verify(hash: str, password: bytes) -> bool:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.02)  # holds the thread so that calls overlap; nothing is timed
        with lock:
            active -= 1
        return real(hash, password)

    monkeypatch.setattr(argon2_sodium, "verify_password", slow_verify)
    try:
        results = await asyncio.gather(*(h.averify(encoded, PASSWORD) for _ in range(8)))
    finally:
        h.close()
    assert results == [True] * 8
    assert peak == 2


# -- policy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "username", "rule"),
    [
        ("short-pw1", "alice", "at least 10"),
        ("x" * 1025, "alice", "at most 1024"),
        (" " * 12, "alice", "whitespace"),
        ("\t\n \u3000" * 4, "alice", "whitespace"),
        ("alice.wonderland", "alice.wonderland", "username"),
        ("Alice.Wonderland", "alice.wonderland", "username"),
        ("alice.wonderland", "ALICE.WONDERLAND", "username"),
        ("password123", "alice", "common"),
        ("PassWord123", "alice", "common"),
        ("QWERTYUIOP", "alice", "common"),
        ("\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44123", "alice", "common"),
    ],
    ids=[
        "too-short",
        "too-long",
        "spaces-only",
        "unicode-whitespace-only",
        "equals-username",
        "equals-username-other-case",
        "equals-username-upper",
        "common",
        "common-other-case",
        "common-keyboard-walk",
        "common-fullwidth",
    ],
)
def test_policy_rejects(password: str, username: str, rule: str) -> None:
    with pytest.raises(WeakPassword) as info:
        PasswordPolicy().check(password, username)
    message = str(info.value)
    assert rule in message
    assert password not in message  # the message is safe to show and log


@pytest.mark.parametrize(
    ("password", "username"),
    [
        ("exactly10!", "alice"),
        ("correct horse battery", "alice"),
        ("alice.wonderland!", "alice.wonderland"),
        ("x" * 1024, "alice"),
        ("\u00e9t\u00e9-\u00e0-paris", "alice"),
        ("a long passphrase", None),
    ],
    ids=["min-length", "passphrase", "username-plus", "max-length", "accents", "no-username"],
)
def test_policy_accepts(password: str, username: str | None) -> None:
    PasswordPolicy().check(password, username)


def test_policy_length_counts_characters_not_bytes() -> None:
    PasswordPolicy(min_length=10).check("\u00e9" * 10, "alice")
    with pytest.raises(WeakPassword):
        PasswordPolicy(min_length=10).check("\u00e9" * 9, "alice")


def test_policy_common_list_can_be_disabled() -> None:
    PasswordPolicy(reject_common=False).check("password123", "alice")


def test_common_list_is_casefolded_and_long_enough_to_matter() -> None:
    assert all(p == p.casefold() for p in COMMON_PASSWORDS)
    assert sum(len(p) >= 10 for p in COMMON_PASSWORDS) >= 30


@pytest.mark.parametrize(
    "kwargs",
    [{"min_length": 0}, {"min_length": 20, "max_length": 10}, {"max_length": 100_000}],
    ids=["min0", "max-below-min", "max-above-cap"],
)
def test_policy_rejects_bad_config(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        PasswordPolicy(**kwargs)


def test_weak_password_is_an_authmesh_error_with_a_reason() -> None:
    assert issubclass(WeakPassword, AuthmeshError)
    assert WeakPassword.reason == "weak_password"
