"""Argon2id through libsodium (PyNaCl), for the hashes libsodium can compute.

argon2-cffi builds Argon2's portable reference code; libsodium picks a kernel
for the CPU at run time (SSE, AVX2, AVX-512), so on today's x86 servers the
same verification, with the same parameters, takes a fraction of the CPU. It is
a sign-in's largest cost (the ``signin`` part of ``bench/RESULTS.md``). Both
read and write the same PHC string, ``$argon2id$v=19$m=…,t=…,p=…$salt$hash``,
so a hash made by either verifies with the other, and the security of a stored
hash is its parameters', whichever code computed it.

libsodium computes Argon2id with one lane, and makes hashes with a 16-byte salt
and a 32-byte output only. :class:`~authmesh.server.passwords.PasswordHasher`
uses it where the parameters fit, argon2-cffi elsewhere, and lets argon2-cffi
parse every stored hash first: libsodium answers a malformed hash and a wrong
password alike.
"""

from __future__ import annotations

import argon2
from nacl.bindings import crypto_pwhash_str_verify
from nacl.exceptions import InvalidkeyError
from nacl.pwhash import argon2id

__all__ = ["can_hash", "can_verify", "hash_password", "verify_password"]

#: The output length of the hashes libsodium makes.
_HASH_LEN = 32
#: libsodium reads encoded hashes of up to ``crypto_pwhash_STRBYTES - 1`` characters.
_MAX_ENCODED = 127


def can_hash(params: argon2.Parameters) -> bool:
    """Whether libsodium makes hashes with exactly these parameters."""
    return (
        params.type is argon2.Type.ID
        and params.version == argon2.low_level.ARGON2_VERSION
        and params.parallelism == 1
        and params.salt_len == argon2id.SALTBYTES
        and params.hash_len == _HASH_LEN
        and params.memory_cost * 1024 >= argon2id.MEMLIMIT_MIN
    )


def can_verify(encoded: str, stored: argon2.Parameters) -> bool:
    """Whether libsodium verifies ``encoded``, a stored hash, parsed as ``stored``."""
    return (
        len(encoded) <= _MAX_ENCODED
        and encoded.isascii()
        and stored.type is argon2.Type.ID
        and stored.version == argon2.low_level.ARGON2_VERSION
        and stored.parallelism == 1
    )


def hash_password(password: bytes, params: argon2.Parameters) -> str:
    """A new ``$argon2id$`` string for ``password``; only where :func:`can_hash` is true."""
    encoded = argon2id.str(password, opslimit=params.time_cost, memlimit=params.memory_cost * 1024)
    return encoded.decode("ascii")


def verify_password(stored: str, password: bytes) -> bool:
    """Whether ``password`` matches ``stored``; only where :func:`can_verify` is true."""
    try:
        return crypto_pwhash_str_verify(stored.encode("ascii"), password)
    except InvalidkeyError:
        return False
