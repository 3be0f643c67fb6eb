"""TOTP secrets at rest: sealed (AES-GCM, bound to the user) under the master key when
one is set, so a database read alone does not give the codes."""

from __future__ import annotations

import functools

from authmesh.errors import ConfigError
from authmesh.server.context import ServerContext
from authmesh.server.secrets import KeyEncryptor
from authmesh.store.models import FactorRow

__all__ = ["stored_totp_secret", "totp_secret_of"]

_SEALED = "enc:"


@functools.cache
def _sealer(master_key: str) -> KeyEncryptor:
    return KeyEncryptor(master_key)


def stored_totp_secret(ctx: ServerContext, user_id: str, secret: str) -> str:
    """How a TOTP secret is stored: sealed (AES-GCM, bound to the user) under the master
    key when one is set, so a database read alone does not give the codes."""
    master = ctx.settings.master_key
    if master is None:
        return secret
    sealed = _sealer(master.get_secret_value()).encrypt({"s": secret}, aad=f"totp:{user_id}")
    return _SEALED + sealed


def totp_secret_of(ctx: ServerContext, row: FactorRow) -> str:
    """The TOTP secret of a stored authenticator.

    Raises:
        ConfigError: sealed, and the master key is missing or wrong.
    """
    stored = row.totp_secret or ""
    if not stored.startswith(_SEALED):
        return stored
    master = ctx.settings.master_key
    if master is None:
        raise ConfigError("a TOTP secret is sealed but AUTHMESH_MASTER_KEY is not set")
    opened = _sealer(master.get_secret_value()).decrypt(
        stored[len(_SEALED) :], aad=f"totp:{row.user_id}"
    )
    return str(opened["s"])
