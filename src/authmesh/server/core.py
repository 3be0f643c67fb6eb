"""The auth server's parts wired together, free of HTTP.

Route modules receive an :class:`AuthCore` and call the service modules
(``grants``, ``accounts``, ``clients``) with it; the CLI builds the same core
to work on the same database without a running server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from authmesh.jose.policy import Clock
from authmesh.revocation import RevocationEvent, RevocationKind
from authmesh.server.config import ServerSettings
from authmesh.server.feed import FeedHub
from authmesh.server.keys import KeyManager
from authmesh.server.login_limits import LoginGuard
from authmesh.server.passwords import PasswordHasher, PasswordParams, PasswordPolicy
from authmesh.server.secrets import KeyEncryptor, new_secret
from authmesh.server.tokens import TokenIssuer
from authmesh.store import audit, revocations
from authmesh.store.db import Database
from authmesh.store.meta import get_or_create_meta

__all__ = ["AuthCore", "RequestInfo", "quiet_data_loggers"]

#: Loggers that print SQL parameters and result rows at INFO/DEBUG: password hashes,
#: the refresh-token pepper and (without a master key) private signing keys.
_DATA_LOGGERS = ("sqlalchemy.engine", "sqlalchemy.pool", "aiosqlite", "asyncpg")


def quiet_data_loggers() -> None:
    """Keep the database loggers at WARNING unless an operator set their level on purpose.

    A root logger at DEBUG (``logging.basicConfig(level=DEBUG)``) would otherwise
    turn on SQLAlchemy's and aiosqlite's statement, parameter and row logging, and
    secrets read from or written to the database would reach the logs.
    """
    for name in _DATA_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """Who is asking, for the audit trail and rate limits."""

    client_ip: str | None = None
    actor: str | None = None


@dataclass(slots=True, kw_only=True)
class AuthCore:
    """Settings, database, keys, hashing, feed and clock of one server process."""

    settings: ServerSettings
    db: Database
    keys: KeyManager
    issuer: TokenIssuer
    hasher: PasswordHasher
    policy: PasswordPolicy
    hub: FeedHub
    guard: LoginGuard
    clock: Clock
    pepper: bytes = b""
    web_key: bytes = b""

    @classmethod
    def build(cls, settings: ServerSettings, *, clock: Clock = time.time) -> AuthCore:
        """Wire the parts from settings (no I/O yet; call :meth:`start`)."""
        quiet_data_loggers()
        db = Database(settings.db_url, schema=settings.database_schema)
        encryptor = (
            KeyEncryptor(settings.master_key.get_secret_value()) if settings.master_key else None
        )
        keys = KeyManager(
            db,
            alg=settings.signing_alg,
            publish_ahead=settings.key_publish_ahead,
            token_lifetime=settings.access_token_ttl + settings.leeway,
            encryptor=encryptor,
            clock=clock,
        )
        params = PasswordParams(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost,
            parallelism=settings.argon2_parallelism,
        )
        return cls(
            settings=settings,
            db=db,
            keys=keys,
            issuer=TokenIssuer(
                issuer=settings.issuer_url,
                keys=keys,
                lifetime=settings.access_token_ttl,
                clock=clock,
            ),
            hasher=PasswordHasher(params),
            policy=PasswordPolicy(min_length=settings.password_min_length),
            hub=FeedHub(db, settings=settings, clock=clock),
            guard=LoginGuard(settings),
            clock=clock,
        )

    async def start(self) -> None:
        """Migrate the database, make sure a signing key exists, load the pepper."""
        await self.db.upgrade()
        await self.keys.ensure_key()
        pepper = await get_or_create_meta(self.db, "refresh_pepper", new_secret)
        self.pepper = pepper.encode()
        web_key = await get_or_create_meta(self.db, "web_secret", new_secret)
        self.web_key = web_key.encode()

    async def close(self) -> None:
        """Stop the feed and close the database."""
        await self.hub.stop()
        await self.guard.close()
        await self.db.dispose()
        self.hasher.close()

    def now(self) -> float:
        """The injected clock's time."""
        return self.clock()

    @property
    def revocation_horizon(self) -> float:
        """How long a revocation event can matter: the longest token life plus leeway."""
        return float(self.settings.access_token_ttl + self.settings.leeway)

    async def revoke(
        self,
        session: AsyncSession,
        kind: RevocationKind,
        values: Iterable[str],
        *,
        through_this_second: bool = False,
    ) -> list[int]:
        """Write revocation events in the caller's transaction; returns their cursors.

        Call :meth:`announce` after the transaction commits so feed streams wake.
        ``through_this_second`` makes a ``sub`` event also cover tokens issued
        later in the current second: for revocations no ``sid`` event backs up
        (a role taken away, a client removed).
        """
        now = self.now()
        # Whole seconds: tokens carry integer iat, and one issued later in this same
        # second (a new login after a password change) must stay valid. Tokens of
        # this second issued before the event die with their session's sid event.
        not_before = float(int(now)) + (1.0 if through_this_second else 0.0)
        cursors = []
        for value in values:
            event = RevocationEvent(
                kind=kind,
                value=value,
                not_before=not_before,
                expires_at=now + self.revocation_horizon,
            )
            cursors.append(await revocations.append_event(session, event, now=now))
        return cursors

    async def announce(self, cursors: Iterable[int]) -> None:
        """Wake the revocation feed after a commit that wrote events."""
        top = max(cursors, default=0)
        if top:
            await self.hub.notify(top)

    async def audit(
        self,
        session: AsyncSession,
        action: str,
        *,
        outcome: str = "success",
        info: RequestInfo | None = None,
        subject: str | None = None,
        client_id: str | None = None,
        **details: object,
    ) -> None:
        """Record a security event in the caller's transaction."""
        await audit.record_audit(
            session,
            action=action,
            outcome=outcome,
            now=self.now(),
            actor=info.actor if info else None,
            subject=subject,
            client_id=client_id,
            client_ip=info.client_ip if info else None,
            details=details,
        )
