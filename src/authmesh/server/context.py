"""The server context: settings, database, keys, hashing, feed and clock of one process.

Route modules receive a :class:`ServerContext` and call the service modules
(``grants``, ``accounts``, ``clients``, ``audit``, ``feed``) with it; the CLI
builds the same context to work on the same database without a running server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from authmesh.dpop import ReplayCache
from authmesh.jose.policy import Clock
from authmesh.server.config import ServerSettings
from authmesh.server.dpop_proofs import SharedProofLog
from authmesh.server.feed.hub import FeedHub
from authmesh.server.keys import KeyManager
from authmesh.server.login_limits import LoginGuard
from authmesh.server.master_key import MasterKey
from authmesh.server.passwords import PasswordHasher, PasswordParams, PasswordPolicy
from authmesh.server.redis_client import short_timeout_client
from authmesh.server.secrets import new_secret
from authmesh.server.tokens import TokenIssuer
from authmesh.store.db import Database, DatabaseTimeouts
from authmesh.store.meta import get_or_create_meta

__all__ = ["RequestInfo", "ServerContext", "quiet_data_loggers"]

log = logging.getLogger(__name__)

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
    user_agent: str | None = None


@dataclass(slots=True, kw_only=True)
class ServerContext:
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
    #: DPoP proofs seen at the token endpoint of this process (RFC 9449 §11.1).
    dpop_replay: ReplayCache = field(default_factory=ReplayCache)
    #: The same for every process, in Redis when it is configured.
    dpop_shared: SharedProofLog | None = None
    #: Set when a push stream has SETs due at once (a verification asked for, a stream
    #: reconfigured): the push worker of this process wakes for it, not on its idle tick.
    push_due: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def build(
        cls, settings: ServerSettings, *, clock: Clock = time.time, create_database: bool = True
    ) -> ServerContext:
        """Wire the parts from settings (no I/O yet; call :meth:`start`).

        Without ``create_database`` a SQLite file that does not exist is a
        :class:`~authmesh.errors.ConfigError` instead of a new, empty database.
        """
        quiet_data_loggers()
        db = Database(
            settings.db_url,
            schema=settings.database_schema,
            timeouts=DatabaseTimeouts(
                connect=settings.database_connect_timeout,
                checkout=settings.database_pool_timeout,
                statement=settings.database_statement_timeout,
            ),
            create=create_database,
        )
        keys = KeyManager(
            db,
            alg=settings.signing_alg,
            publish_ahead=settings.key_publish_ahead,
            token_lifetime=settings.access_token_ttl + settings.leeway,
            master_key=MasterKey.from_settings(settings),
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
            dpop_shared=_shared_proof_log(settings, clock),
        )

    async def start(self, *, seal_plaintext_keys: bool = False) -> None:
        """Migrate the database, make sure a signing key exists, load the pepper.

        ``seal_plaintext_keys`` (the server, not a one-off command) encrypts private
        keys still stored in plaintext under the master key.
        """
        await self.db.upgrade()
        await self.keys.ensure_key()
        if seal_plaintext_keys:
            await self._seal_plaintext_keys()
        pepper = await get_or_create_meta(self.db, "refresh_pepper", new_secret)
        self.pepper = pepper.encode()
        web_key = await get_or_create_meta(self.db, "web_secret", new_secret)
        self.web_key = web_key.encode()

    async def _seal_plaintext_keys(self) -> None:
        master_key = self.keys.master_key
        sealed = await self.keys.seal_plaintext_keys()
        if sealed:
            log.warning(
                "encrypted %d signing key(s) stored in plaintext, under the master key (%s)",
                sealed,
                master_key.source,
            )
        elif master_key.plaintext_allowed and master_key.for_reading() is None:
            log.warning("private signing keys are stored in plaintext (insecure_plaintext_keys)")

    async def close(self) -> None:
        """Stop the feed and close the database."""
        await self.hub.stop()
        await self.guard.close()
        if self.dpop_shared is not None:
            await self.dpop_shared.aclose()
        await self.db.dispose()
        self.hasher.close()

    def now(self) -> float:
        """The injected clock's time."""
        return self.clock()


def _shared_proof_log(settings: ServerSettings, clock: Clock) -> SharedProofLog | None:
    """The DPoP proofs every process shares, in Redis when it is configured."""
    if not settings.redis_url:
        return None
    # One namespace per schema, as for the rate limits: deployments sharing a Redis
    # keep their own proofs.
    schema = f"{settings.database_schema}:" if settings.database_schema else ""
    return SharedProofLog(
        short_timeout_client(settings.redis_url, timeout=settings.redis_timeout),
        prefix=f"authmesh:dpop:{schema}",
        clock=clock,
    )
