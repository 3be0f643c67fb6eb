"""Check of key encryption: are the private signing keys sealed, and can they be opened?"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from authmesh.errors import ConfigError
from authmesh.server.config import ServerSettings
from authmesh.server.doctor.findings import Finding, fail, ok, warn
from authmesh.server.master_key import MasterKey
from authmesh.store.db import Database
from authmesh.store.models import SigningKeyRow

__all__ = ["KEYS", "check_keys"]

KEYS = "key encryption"


async def check_keys(settings: ServerSettings, db: Database) -> Finding:
    """Sealed keys open with the master key; plaintext ones only by choice (a warning)."""
    try:
        master = MasterKey.from_settings(settings)
        async with db.transaction() as session:
            stmt = select(SigningKeyRow.kid, SigningKeyRow.encrypted, SigningKeyRow.private_jwk)
            rows = (await session.execute(stmt)).all()
        sealed = [(kid, private) for kid, encrypted, private in rows if encrypted]
        plain = len(rows) - len(sealed)
        if sealed:
            opener = master.for_reading()
            if opener is None:
                return fail(
                    KEYS,
                    f"{len(sealed)} signing key(s) are encrypted, but there is no master key: "
                    f"set AUTHMESH_MASTER_KEY, or --data-dir to the folder holding master.key",
                )
            for kid, private in sealed:
                opener.decrypt(private, aad=kid)
    except ConfigError as exc:
        return fail(KEYS, str(exc))
    except SQLAlchemyError as exc:
        return fail(KEYS, f"cannot read the signing keys: {type(exc).__name__}")
    if plain and settings.insecure_plaintext_keys:
        return warn(KEYS, f"{plain} private key(s) stored in plaintext, by choice")
    if plain:
        return warn(
            KEYS,
            f"{plain} private key(s) still stored in plaintext: `authmesh serve` encrypts "
            f"them at start (master key: {master.source})",
        )
    if sealed:
        return ok(KEYS, f"{len(sealed)} signing key(s) encrypted (master key: {master.source})")
    if master.for_reading() is not None:
        return ok(KEYS, f"no signing key yet; it will be encrypted (master key: {master.source})")
    if settings.insecure_plaintext_keys:
        return warn(KEYS, "no signing key yet; it will be stored in plaintext, by choice")
    return ok(KEYS, f"no signing key yet; the first start keeps a master key in {master.path}")
