"""Several server processes on one host: ``authmesh serve --workers N``.

uvicorn starts the workers and imports the app in each by name, so the parent
hands them its settings through the environment. Workers share what replicas
share: PostgreSQL (the data, and LISTEN/NOTIFY or Redis pub/sub to wake each
other's feed streams) and Redis (login back-off, lockouts and rate limits, which
in memory would be counted, and lifted by an admin, in one worker only). Both
are required: SQLite serves one process, and limits per worker would let an
attacker try N times as many passwords.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from authmesh.errors import ConfigError
from authmesh.server.config import ServerSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = [
    "APP_FACTORY",
    "HTTP_PROTOCOL",
    "SETTINGS_ENV",
    "check_workers",
    "create_worker_app",
    "worker_environment",
]

#: The settings of the parent, as JSON, for the workers it starts.
SETTINGS_ENV = "AUTHMESH_WORKER_SETTINGS"
#: The import string uvicorn gives each worker.
APP_FACTORY = "authmesh.server.workers:create_worker_app"
#: The HTTP protocol uvicorn gives each worker, by name (a class made at run time
#: cannot be sent to a spawned process): read timeouts from the parent's settings.
HTTP_PROTOCOL = "authmesh.server.workers:WorkerHTTPProtocol"


def check_workers(settings: ServerSettings) -> None:
    """Refuse a worker count the storage cannot serve.

    Raises:
        ConfigError: more than one worker on SQLite, or without Redis.
    """
    if settings.workers <= 1:
        return
    if settings.db_url.startswith("sqlite"):
        raise ConfigError(
            "--workers needs PostgreSQL (--database-url postgresql+asyncpg://…): "
            "SQLite serves one process"
        )
    if not settings.redis_url:
        raise ConfigError(
            "--workers needs Redis (AUTHMESH_REDIS_URL, or redis_url in the config file) so that "
            "every worker "
            "counts the same failed logins and rate limits, and refuses a DPoP proof "
            "another worker saw"
        )


def worker_environment(settings: ServerSettings) -> dict[str, str]:
    """The environment that gives every worker exactly the parent's settings."""
    values: dict[str, Any] = settings.model_dump(mode="json", exclude_none=True)
    if settings.master_key is not None:
        # model_dump masks secrets; the workers need the key itself.
        values["master_key"] = settings.master_key.get_secret_value()
    return {SETTINGS_ENV: json.dumps(values)}


def _worker_settings() -> ServerSettings:
    raw = os.environ.get(SETTINGS_ENV)
    if raw is None:
        raise ConfigError(f"{SETTINGS_ENV} is not set: start workers with authmesh serve --workers")
    return ServerSettings(**json.loads(raw))


def __getattr__(name: str) -> Any:
    # ``WorkerHTTPProtocol``, built when a worker's uvicorn imports it by name.
    if name == "WorkerHTTPProtocol":
        from authmesh.server.serving import http_protocol

        return http_protocol(_worker_settings())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create_worker_app() -> FastAPI:
    """The app of one worker (uvicorn calls this in each worker process)."""
    from authmesh.server.app import create_app

    settings = _worker_settings()
    if settings.otel:
        from authmesh.server.tracing import configure_tracing

        # A tracer provider and its exporter belong to a process: one per worker.
        configure_tracing()
    return create_app(settings)
