"""Password hashing with Argon2id (RFC 9106) and the rules a new password must meet.

:class:`PasswordHasher` wraps argon2-cffi with the answers a login needs:
``verify`` returns a bool and never raises on a mismatch or a corrupted stored
hash; ``needs_rehash`` lets a login upgrade a hash when the parameters change;
``verify_dummy`` spends the same work on an unknown user as on a wrong password,
so response time does not tell whether a username exists.

Passwords are normalised to Unicode NFKC before hashing and checking (NIST SP
800-63B §3.1.1.2), so the same password typed on two systems that compose
accents differently hashes the same.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

from authmesh.errors import ConfigError
from authmesh.server import argon2_sodium
from authmesh.server.errors import WeakPassword

__all__ = [
    "COMMON_PASSWORDS",
    "MAX_PASSWORD_LENGTH",
    "PasswordHasher",
    "PasswordParams",
    "PasswordPolicy",
    "WeakPassword",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: No policy may allow longer passwords; the hasher refuses anything longer
#: outright. Argon2 reads the password once, but a bound keeps a request body
#: from being a megabyte-sized "password" that is normalised and hashed.
MAX_PASSWORD_LENGTH = 4096

#: A short list of the most used passwords that are long enough to pass a length
#: rule (from public breach corpora); compared after case-folding. A deployment
#: that wants the full k-anonymity breach check adds it in front of the policy.
COMMON_PASSWORDS: frozenset[str] = frozenset(
    {
        "0123456789",
        "1111111111",
        "1234567890",
        "0987654321",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "123123123123",
        "123456789012",
        "1234567891",
        "1234512345",
        "abc1234567",
        "abcdefghij",
        "abcd123456",
        "administrator",
        "aa12345678",
        "changeme123",
        "football123",
        "iloveyou123",
        "letmein123",
        "monkey12345",
        "password",
        "password1",
        "password12",
        "password123",
        "password1234",
        "password!",
        "passw0rd123",
        "p@ssw0rd123",
        "p@ssword123",
        "qwerty1234",
        "qwerty12345",
        "qwerty123456",
        "qwertyuiop",
        "qwertyuiop123",
        "q1w2e3r4t5",
        "q1w2e3r4t5y6",
        "trustno1234",
        "welcome123",
        "welcome1234",
        "zaq12wsxcde",
        "1q2w3e4r5t6y",
        "asdfghjkl1",
        "asdfghjkl;",
        "zxcvbnm123",
        "iloveyou12",
        "superman123",
        "sunshine123",
        "princess123",
        "dragon12345",
        "baseball123",
        "starwars123",
        "correcthorsebatterystaple",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordParams:
    """Argon2id cost parameters.

    Defaults are OWASP's Argon2id configuration of 7 MiB, 5 passes, 1 lane (the
    Password Storage Cheat Sheet lists it beside 19 MiB × 2 and 46 MiB × 1 as
    equal in strength), which is also Keycloak's default: about a tenth of the
    work of RFC 9106's low-memory profile (64 MiB × 3 × 4 lanes), which would
    cap a core at a few logins a second (bench/RESULTS.md). Tags of 32 bytes
    and salts of 16 (RFC 9106 §3.1). Deployments that want more set the
    ``argon2_*`` settings; hashes rehash on the next login. Use :meth:`fast` in
    tests only.

    Args:
        time_cost: passes over memory (t).
        memory_cost: memory in KiB (m); at least 8 × ``parallelism``.
        parallelism: lanes (p).
        hash_len: tag length in bytes.
        salt_len: random salt length in bytes (RFC 9106 §3.1 recommends 16).

    Raises:
        ConfigError: a value Argon2 cannot use.
    """

    time_cost: int = 5
    memory_cost: int = 7168
    parallelism: int = 1
    hash_len: int = RFC_9106_LOW_MEMORY.hash_len
    salt_len: int = RFC_9106_LOW_MEMORY.salt_len

    def __post_init__(self) -> None:
        if self.time_cost < 1:
            raise ConfigError("argon2 time_cost must be at least 1")
        if self.parallelism < 1:
            raise ConfigError("argon2 parallelism must be at least 1")
        if self.memory_cost < 8 * self.parallelism:
            raise ConfigError("argon2 memory_cost (KiB) must be at least 8 × parallelism")
        if self.hash_len < 16:
            raise ConfigError("argon2 hash_len must be at least 16 bytes")
        if self.salt_len < 8:
            raise ConfigError("argon2 salt_len must be at least 8 bytes")

    @classmethod
    def fast(cls) -> PasswordParams:
        """The cheapest valid Argon2id, for tests; never in production."""
        return cls(time_cost=1, memory_cost=8, parallelism=1, hash_len=16, salt_len=8)

    def to_argon2(self) -> argon2.Parameters:
        """The same parameters as argon2-cffi's :class:`argon2.Parameters` (type ID, v1.3)."""
        return argon2.Parameters(
            type=argon2.Type.ID,
            version=argon2.low_level.ARGON2_VERSION,
            salt_len=self.salt_len,
            hash_len=self.hash_len,
            time_cost=self.time_cost,
            memory_cost=self.memory_cost,
            parallelism=self.parallelism,
        )


def _normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


class PasswordHasher:
    """Argon2id hashing and verification for the auth server.

    The synchronous methods block for the full cost of Argon2 (7 MiB with the
    default parameters). In async code use :meth:`ahash`,
    :meth:`averify` and :meth:`averify_dummy`: they run the work on a small
    thread pool owned by this hasher. Why a pool of our own and not the event
    loop or the default executor: run on the loop, each login would stall every
    other request of the process for the whole hash; argon2-cffi releases the GIL,
    so a thread runs it truly in parallel. And a dedicated pool of
    ``max_concurrency`` threads bounds the memory a login flood can take to
    ``max_concurrency × memory_cost`` (the default executor would allow dozens of
    costly hashes at once) while leaving the default executor free for the rest
    of the app. Extra logins wait in the pool's queue, which the rate limiter
    keeps short.

    Args:
        params: the cost parameters new hashes get; older hashes still verify.
        max_concurrency: threads for the async variants; defaults to the CPU count.
    """

    __slots__ = (
        "_dummy",
        "_executor",
        "_hasher",
        "_lock",
        "_max_concurrency",
        "_sodium_params",
        "params",
    )

    def __init__(
        self, params: PasswordParams | None = None, *, max_concurrency: int | None = None
    ) -> None:
        self.params = params or PasswordParams()
        parameters = self.params.to_argon2()
        self._hasher = argon2.PasswordHasher.from_parameters(parameters)
        # libsodium computes the same Argon2id faster (see argon2_sodium); argon2-cffi
        # makes the hashes libsodium cannot, and parses every stored hash.
        sodium_hashes = argon2_sodium.can_hash(parameters)
        self._sodium_params: argon2.Parameters | None = parameters if sodium_hashes else None
        self._max_concurrency = max(1, max_concurrency or os.cpu_count() or 1)
        self._dummy: str | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # -- synchronous (blocking) API -----------------------------------------------

    def hash(self, password: str) -> str:
        """Hash a password into an encoded ``$argon2id$…`` string (salt included).

        Raises:
            WeakPassword: the password is longer than :data:`MAX_PASSWORD_LENGTH`.
        """
        if len(password) > MAX_PASSWORD_LENGTH:
            raise WeakPassword(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")
        return self._new_hash(_normalize(password))

    def _new_hash(self, password: str) -> str:
        if self._sodium_params is not None:
            return argon2_sodium.hash_password(password.encode(), self._sodium_params)
        return self._hasher.hash(password)

    def _matches(self, hash: str, password: str) -> bool:
        """Argon2 verification; raises for a hash that is not a valid Argon2 string."""
        stored = argon2.extract_parameters(hash)
        if argon2_sodium.can_verify(hash, stored):
            return argon2_sodium.verify_password(hash, password.encode())
        try:
            return self._hasher.verify(hash, password)
        except VerificationError:  # includes VerifyMismatchError
            return False

    def verify(self, hash: str | None, password: str) -> bool:
        """Whether ``password`` matches the stored ``hash``.

        Never raises for a wrong password or a corrupted or foreign hash string: both
        are ``False``. ``hash=None`` (an account without a password) and a corrupted
        hash still spend the cost of one verification, so timing does not single
        such accounts out.
        """
        if len(password) > MAX_PASSWORD_LENGTH:
            # No policy lets such a password be set; its length is the caller's own
            # input, so answering fast reveals nothing about the account.
            return False
        if hash is None:
            self.verify_dummy(password)
            return False
        try:
            return self._matches(hash, _normalize(password))
        except (InvalidHashError, ValueError, TypeError):
            # A stored hash that is not Argon2: an operator problem, reported without
            # naming the account; the caller sees a plain mismatch.
            _log.warning("a stored password hash is not a valid Argon2 hash")
            self.verify_dummy(password)
            return False

    def needs_rehash(self, hash: str) -> bool:
        """Whether ``hash`` was made with other parameters (or another Argon2 type).

        After a successful :meth:`verify`, a login that gets ``True`` here stores
        ``hash(password)`` in place of the old hash. An unreadable hash is ``True``.
        """
        try:
            return self._hasher.check_needs_rehash(hash)
        except (InvalidHashError, ValueError, TypeError):
            return True

    def verify_dummy(self, password: str) -> bool:
        """Verify against a dummy hash made with this hasher's parameters; always ``False``.

        Call it for an unknown username so that the answer takes as long as for a
        known user with a wrong password. The dummy hash is made once, on first use,
        from a random secret no client can know.
        """
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        self._matches(self.dummy_hash, _normalize(password))
        return False

    @property
    def dummy_hash(self) -> str:
        """The hash :meth:`verify_dummy` checks against (same parameters as new hashes)."""
        dummy = self._dummy
        if dummy is None:
            # Racing threads may each compute one; any of them is as good.
            dummy = self._dummy = self._new_hash(secrets.token_urlsafe(32))
        return dummy

    # -- async API ----------------------------------------------------------------

    async def _run(self, fn: Callable[..., _T], *args: str | None) -> _T:
        executor = self._executor
        if executor is None:
            with self._lock:
                executor = self._executor
                if executor is None:
                    executor = self._executor = ThreadPoolExecutor(
                        max_workers=self._max_concurrency, thread_name_prefix="authmesh-argon2"
                    )
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    async def ahash(self, password: str) -> str:
        """:meth:`hash` on the hasher's thread pool, without blocking the event loop."""
        return await self._run(self.hash, password)

    async def averify(self, hash: str | None, password: str) -> bool:
        """:meth:`verify` on the hasher's thread pool, without blocking the event loop."""
        return await self._run(self.verify, hash, password)

    async def averify_dummy(self, password: str) -> bool:
        """:meth:`verify_dummy` on the hasher's thread pool; always ``False``."""
        return await self._run(self.verify_dummy, password)

    def close(self) -> None:
        """Stop the thread pool of the async variants (waits for running hashes)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordPolicy:
    """What a new password must meet (NIST SP 800-63B §3.1.1.2).

    ``min_length`` defaults to 10: above NIST's floor of 8, and what the server's
    ``password_min_length`` setting defaults to, so a policy built without settings
    behaves like the server. Length counts Unicode characters after NFKC, not
    bytes. Composition rules (a digit, a symbol) are deliberately absent: NIST
    advises against them, and the common-password list catches their usual results.

    Args:
        min_length: fewest characters.
        max_length: most characters; bounds the work one request can ask for.
        reject_common: refuse the passwords in :data:`COMMON_PASSWORDS`.

    Raises:
        ConfigError: lengths out of range.
    """

    min_length: int = 10
    max_length: int = 1024
    reject_common: bool = True

    def __post_init__(self) -> None:
        if self.min_length < 1:
            raise ConfigError("password min_length must be at least 1")
        if self.max_length < self.min_length:
            raise ConfigError("password max_length must be at least min_length")
        if self.max_length > MAX_PASSWORD_LENGTH:
            raise ConfigError(f"password max_length must be at most {MAX_PASSWORD_LENGTH}")

    def check(self, password: str, username: str | None = None) -> None:
        """Accept the password for ``username`` or raise the first rule it breaks.

        Raises:
            WeakPassword: too short, too long, only whitespace, the username
                (ignoring case), or a common password.
        """
        # Before normalising: NFKC may expand the text, so bound the input first.
        if len(password) > self.max_length:
            raise WeakPassword(f"the password must have at most {self.max_length} characters")
        text = _normalize(password)
        if not text.strip():
            raise WeakPassword("the password must not be only whitespace")
        if len(text) < self.min_length:
            raise WeakPassword(f"the password must have at least {self.min_length} characters")
        if len(text) > self.max_length:
            raise WeakPassword(f"the password must have at most {self.max_length} characters")
        folded = text.casefold()
        if username is not None and folded == _normalize(username).casefold():
            raise WeakPassword("the password must not be the username")
        if self.reject_common and folded in COMMON_PASSWORDS:
            raise WeakPassword("the password is too common; choose another")
