"""Signing keys of the server: creation, rotation, the active key and the JWKS.

Rotation: a new key is published in the JWKS
``key_publish_ahead`` seconds before it signs, so verifiers holding a cached
JWKS already know it; the old key stops signing then, and leaves the JWKS once
the last token it signed has expired. Every process reads the same rows and
picks the same active key (latest activation, then kid), so replicas agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from authmesh.errors import ConfigError
from authmesh.jose import Key, KeySet
from authmesh.jose.policy import Clock
from authmesh.server.master_key import MASTER_KEY_FILE, MasterKey
from authmesh.store import signing_keys
from authmesh.store.db import Database
from authmesh.store.models import SigningKeyRow

__all__ = ["KeyInfo", "KeyManager"]

_RELOAD_SECONDS = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyInfo:
    """What an operator sees of a key (never its private part)."""

    kid: str
    alg: str
    published_at: float
    activates_at: float
    retires_at: float | None
    expires_at: float | None
    state: str


class KeyManager:
    """Loads keys from the database and answers which key signs and which are published."""

    def __init__(
        self,
        db: Database,
        *,
        alg: str,
        publish_ahead: float,
        token_lifetime: float,
        master_key: MasterKey,
        clock: Clock,
    ) -> None:
        self._db = db
        self._alg = alg
        self._publish_ahead = publish_ahead
        # How long after retirement a key must stay published: its last token's life.
        self._token_lifetime = token_lifetime
        #: Where the key sealing the private keys comes from.
        self.master_key = master_key
        self._clock = clock
        # Another replica's rotation must be seen before the new key activates,
        # or the replicas would sign with different keys for a while.
        self._reload_every = _RELOAD_SECONDS
        if publish_ahead > 0:
            self._reload_every = max(0.2, min(_RELOAD_SECONDS, publish_ahead / 2))
        self._rows: list[SigningKeyRow] = []
        self._keys: dict[str, Key] = {}
        self._loaded_at = float("-inf")

    async def ensure_key(self) -> None:
        """Create the first key on a fresh install (active at once)."""
        await self.reload()
        if not self._rows:
            now = self._clock()
            await self._insert(Key.generate(self._alg), published_at=now, activates_at=now)
            await self.reload()

    async def rotate(self) -> Key:
        """Publish a new key now; it signs after ``publish_ahead``; older keys retire then."""
        now = self._clock()
        key = Key.generate(self._alg)
        activates = now + self._publish_ahead
        await self._insert(key, published_at=now, activates_at=activates, retire_older=True)
        await self.reload()
        return key

    async def rotate_if_due(self, interval: float) -> Key | None:
        """Rotate when the newest key was activated ``interval`` seconds ago or more."""
        await self.reload()
        if not self._rows or interval <= 0:
            return None
        newest = max(row.activates_at for row in self._rows)
        if self._clock() - newest < interval:
            return None
        async with self._db.transaction() as session:
            if not self._db.is_sqlite:
                # One replica rotates; the others find the new key on re-check.
                await session.execute(text("SELECT pg_advisory_xact_lock(427003)"))
            rows = await signing_keys.all_keys(session)
            if rows and self._clock() - max(r.activates_at for r in rows) < interval:
                return None
        return await self.rotate()

    async def _insert(
        self, key: Key, *, published_at: float, activates_at: float, retire_older: bool = False
    ) -> None:
        private = key.to_jwk(private=True)
        stored, encrypted = self._seal(private, kid=key.kid)
        public = private if key.is_symmetric else key.to_jwk(private=False)
        async with self._db.transaction() as session:
            if retire_older:
                await signing_keys.retire_keys_before(
                    session,
                    activates_at=activates_at,
                    retires_at=activates_at,
                    expires_at=activates_at + self._token_lifetime,
                )
            await signing_keys.add_key(
                session,
                kid=key.kid,
                alg=key.alg,
                public_jwk={} if key.is_symmetric else public,
                private_jwk=stored,
                encrypted=encrypted,
                published_at=published_at,
                activates_at=activates_at,
            )

    async def reload(self) -> None:
        """Read every key from the database."""
        async with self._db.transaction() as session:
            rows = list(await signing_keys.all_keys(session))
        keys = {}
        for row in rows:
            cached = self._keys.get(row.kid)
            keys[row.kid] = cached if cached is not None else self._load(row)
        self._rows, self._keys = rows, keys
        self._loaded_at = self._clock()

    def _seal(self, private: dict[str, Any], *, kid: str) -> tuple[str, bool]:
        """The stored form of a private JWK, and whether it is encrypted."""
        encryptor = self.master_key.for_writing()
        if encryptor is None:  # the operator chose plaintext keys
            return json.dumps(private), False
        return encryptor.encrypt(private, aad=kid), True

    async def seal_plaintext_keys(self) -> int:
        """Encrypt the private keys stored in plaintext (by an older version, or by choice
        before a master key was set); how many. Nothing when plaintext is still the choice.
        """
        if self.master_key.for_reading() is None and self.master_key.plaintext_allowed:
            return 0
        sealed = 0
        async with self._db.transaction() as session:
            for row in await signing_keys.all_keys(session):
                if not row.encrypted:
                    stored, encrypted = self._seal(json.loads(row.private_jwk), kid=row.kid)
                    sealed += await signing_keys.replace_private_key(
                        session, kid=row.kid, private_jwk=stored, encrypted=encrypted
                    )
        return sealed

    def _load(self, row: SigningKeyRow) -> Key:
        if row.encrypted:
            encryptor = self.master_key.for_reading()
            if encryptor is None:
                raise ConfigError(
                    f"signing key {row.kid} is encrypted: set AUTHMESH_MASTER_KEY (or --data-dir "
                    f"to the folder holding {MASTER_KEY_FILE}) to use it"
                )
            jwk: dict[str, Any] = encryptor.decrypt(row.private_jwk, aad=row.kid)
        else:
            jwk = json.loads(row.private_jwk)
        return Key.from_jwk(jwk, alg=row.alg)

    async def refresh_if_stale(self) -> None:
        """Re-read keys now and then, so a rotation by another process is seen."""
        if self._clock() - self._loaded_at >= self._reload_every:
            await self.reload()

    def signing_key(self) -> Key:
        """The key that signs now: the latest one activated and not retired.

        Raises:
            ConfigError: no key is active (the store was emptied by hand).
        """
        now = self._clock()
        active = [
            row
            for row in self._rows
            if row.activates_at <= now and (row.retires_at is None or row.retires_at > now)
        ]
        if not active:
            # Right at a hand-off, keep signing with the newest key already activated.
            active = [row for row in self._rows if row.activates_at <= now]
        if not active:
            raise ConfigError("no active signing key; run `authmesh keys rotate`")
        row = max(active, key=lambda r: (r.activates_at, r.kid))
        return self._keys[row.kid]

    def published(self) -> KeySet:
        """Keys that verify tokens now (published and not expired), private parts included."""
        now = self._clock()
        return KeySet(
            self._keys[row.kid]
            for row in self._rows
            if row.published_at <= now and (row.expires_at is None or row.expires_at > now)
        )

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document."""
        return self.published().to_jwks()

    def describe(self) -> list[KeyInfo]:
        """Every key with its state: pending, active, retired (still published) or expired."""
        now = self._clock()
        current = self.signing_key().kid if self._rows else None
        infos = []
        for row in self._rows:
            if row.expires_at is not None and row.expires_at <= now:
                state = "expired"
            elif row.kid == current:
                state = "active"
            elif row.activates_at > now:
                state = "pending"
            else:
                state = "retired"
            infos.append(
                KeyInfo(
                    kid=row.kid,
                    alg=row.alg,
                    published_at=row.published_at,
                    activates_at=row.activates_at,
                    retires_at=row.retires_at,
                    expires_at=row.expires_at,
                    state=state,
                )
            )
        return infos
