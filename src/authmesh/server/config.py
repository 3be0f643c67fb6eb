"""Settings of the auth server: flags, ``AUTHMESH_*`` environment, or a TOML file.

Precedence, highest first: explicit values (command-line flags), environment,
the TOML file, defaults. Everything is validated at start with a clear message.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from authmesh.errors import ConfigError

__all__ = ["ServerSettings", "check_issuer_for_host", "is_wildcard_host", "load_settings"]

_CONFIG_FILE_ENV = "AUTHMESH_CONFIG"


class ServerSettings(BaseSettings):
    """Every setting of ``authmesh serve``; times are in seconds."""

    model_config = SettingsConfigDict(env_prefix="AUTHMESH_", extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(
        default=1, ge=1, le=64, description="Server processes on this host (needs PostgreSQL)"
    )
    issuer: str | None = Field(
        default=None, description="Public base URL; defaults to http://host:port"
    )
    realm: str = Field(
        default="authmesh",
        min_length=1,
        max_length=100,
        description="The realm of the server's WWW-Authenticate challenges (RFC 7235)",
    )
    data_dir: Path = Path("data")
    database_url: str | None = Field(
        default=None, description="Defaults to a SQLite file in data_dir"
    )
    database_schema: str | None = Field(
        default=None,
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema (search_path) holding authmesh's tables",
    )
    # Every wait on the database is bounded, so an outage is a 503 within seconds.
    database_connect_timeout: float = Field(
        default=3.0, gt=0, le=60, description="Opening a database connection"
    )
    database_pool_timeout: float = Field(
        default=3.0, gt=0, le=60, description="Waiting for a free pooled connection"
    )
    database_statement_timeout: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="One statement (PostgreSQL statement_timeout; SQLite busy_timeout)",
    )

    access_token_ttl: int = Field(default=600, ge=30, le=86400)
    refresh_idle_ttl: int = Field(default=7 * 86400, ge=60)
    refresh_absolute_ttl: int = Field(default=30 * 86400, ge=60)
    refresh_reuse_grace: float = Field(
        default=60.0,
        ge=0,
        le=300,
        description=(
            "Retry window: a used refresh token presented again within this long of its "
            "first use, while its successor is unused, gets that same successor back "
            "(a lost answer); any other reuse ends the session. 0 = no retries"
        ),
    )
    leeway: int = Field(default=30, ge=0, le=300)
    authorization_code_ttl: int = Field(default=60, ge=5, le=60)
    browser_session_ttl: int = Field(
        default=10 * 3600, ge=60, description="A browser sign-in (SSO) lasts at most this long"
    )

    signing_alg: Literal["EdDSA", "ES256", "RS256", "HS256"] = "EdDSA"
    key_rotation_interval: int = Field(
        default=30 * 86400, ge=0, description="Rotate signing keys this often; 0 = only by hand"
    )
    key_publish_ahead: int = Field(
        default=600, ge=0, description="A new key is in JWKS this long before it signs"
    )
    jwks_max_age: int = Field(default=300, ge=0, le=86400)
    master_key: SecretStr | None = Field(
        default=None,
        description="Encrypts private keys at rest; unset, one is kept in data_dir/master.key",
    )
    insecure_plaintext_keys: bool = Field(
        default=False,
        description="Without a master key, store private keys unencrypted instead of "
        "creating data_dir/master.key",
    )

    redis_url: str | None = None
    redis_timeout: float = Field(
        default=0.5,
        gt=0,
        le=10,
        description="Connect and read timeout of each Redis call: what a hung Redis costs",
    )
    sign_in_limits_on_redis_outage: Literal["per_process", "refuse"] = Field(
        default="per_process",
        description=(
            "While Redis is down, sign-ins are limited by each process on its own "
            "(per_process, a warning is logged) or refused with 503 and Retry-After (refuse)"
        ),
    )
    feed_heartbeat: float = Field(default=2.0, gt=0, le=60)
    feed_poll_interval: float = Field(
        default=1.0, gt=0, description="Safety-net poll of the revocation log on SQLite"
    )
    feed_max_streams_per_client: int = Field(
        default=20,
        ge=0,
        description="Open revocation-feed streams a service client may hold per server "
        "process; more are answered 429; 0 = no limit",
    )

    password_min_length: int = Field(default=10, ge=8, le=128)
    # OWASP's 7 MiB x 5 passes x 1 lane, Keycloak's default too (see PasswordParams).
    argon2_time_cost: int = Field(default=5, ge=1)
    argon2_memory_cost: int = Field(default=7168, ge=8, description="KiB")
    argon2_parallelism: int = Field(default=1, ge=1)

    login_max_failures: int = Field(default=5, ge=1, description="Free failures before back-off")
    login_lock_after: int = Field(default=20, ge=1)
    login_lock_seconds: int = Field(default=900, ge=1)
    rate_limit_per_minute: int = Field(
        default=600, ge=0, description="Requests per minute per address on public endpoints; 0=off"
    )

    trusted_proxies: str | None = Field(
        default=None,
        description="Addresses (comma-separated, or '*') of balancers whose X-Forwarded-For "
        "names the client: rate limits, login back-off and audit then see the client",
    )
    tls_cert: Path | None = None
    tls_key: Path | None = None

    http_header_timeout: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds a client has to send a request's headers; then 408 and closed",
    )
    http_body_timeout: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="Seconds a client has to send a request's body once its headers are in",
    )
    http_max_body_bytes: int = Field(
        default=64 * 1024,
        ge=0,
        description="Largest request body; a larger one is answered 413; 0 = no limit",
    )
    http_max_header_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Largest request line and headers; larger is answered 431",
    )

    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as timestamped text or one JSON object per line"
    )
    otel: bool = Field(
        default=False,
        description="Trace requests, SQL and outgoing HTTP with OpenTelemetry (authmesh[otel])",
    )

    retention_interval: float = Field(
        default=300.0, ge=0, description="Prune expired rows this often; 0 = only by hand"
    )
    retention_batch_size: int = Field(
        default=1000, ge=1, le=100_000, description="Rows deleted per transaction when pruning"
    )
    audit_retention: int = Field(
        default=90 * 86400, ge=0, description="Keep audit events this long; 0 = forever"
    )
    feed_retention: int = Field(
        default=0,
        ge=0,
        description="Keep revocation events at least this long; they are always kept "
        "until every token they cover has expired (access_token_ttl + leeway)",
    )

    @model_validator(mode="after")
    def _check(self) -> ServerSettings:
        if self.key_publish_ahead < self.jwks_max_age:
            raise ValueError(
                "key_publish_ahead must be at least jwks_max_age, or verifiers with a "
                "cached JWKS would meet a token signed by a key they have not seen"
            )
        if self.refresh_absolute_ttl < self.refresh_idle_ttl:
            raise ValueError("refresh_absolute_ttl must be at least refresh_idle_ttl")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.issuer is not None:
            if not self.issuer.startswith(("https://", "http://")):
                raise ValueError("issuer must be an http(s) URL")
            if self.issuer.endswith("/"):
                raise ValueError("issuer must not end with a slash")
        return self

    @property
    def issuer_url(self) -> str:
        """The ``iss`` of every token and the base of every endpoint URL."""
        if self.issuer:
            return self.issuer
        scheme = "https" if self.tls_cert else "http"
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"{scheme}://{host}:{self.port}"

    @property
    def db_url(self) -> str:
        """The database URL, defaulting to SQLite in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'authmesh.db').resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(_CONFIG_FILE_ENV)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> ServerSettings:
    """Build the settings, turning validation errors into one readable ConfigError.

    ``overrides`` whose value is ``None`` are ignored, so unset flags fall through
    to the environment and the file.
    """
    values = {k: v for k, v in overrides.items() if v is not None}
    previous = os.environ.get(_CONFIG_FILE_ENV)
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        os.environ[_CONFIG_FILE_ENV] = str(path)
    try:
        return ServerSettings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
    finally:
        if config_file is not None:
            if previous is None:
                os.environ.pop(_CONFIG_FILE_ENV, None)
            else:
                os.environ[_CONFIG_FILE_ENV] = previous


def is_wildcard_host(host: str) -> bool:
    """Whether listening on ``host`` means every interface (``0.0.0.0``, ``::``)."""
    if host in ("", "*"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def check_issuer_for_host(settings: ServerSettings) -> None:
    """Refuse a wildcard host without an explicit issuer.

    The issuer is in every token and every endpoint URL; ``http://0.0.0.0:8000``
    is an address no client can use, and a guess (the machine's name) could be
    the wrong one behind a proxy.

    Raises:
        ConfigError: the host is a wildcard and no issuer was given.
    """
    if settings.issuer is None and is_wildcard_host(settings.host):
        host = settings.host or "''"
        raise ConfigError(
            f"--host {host} listens on every interface: give the public URL "
            "clients use with --issuer (or AUTHMESH_ISSUER), e.g. --issuer https://auth.example.com"
        )
