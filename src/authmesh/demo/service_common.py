"""What both demo services share: their facts, their SDK config, a health route."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from authmesh.demo.env import listen_host, read_env
from authmesh.errors import ConfigError
from authmesh.service import ServiceAuth, ServiceConfig

__all__ = ["add_health", "demo_facts", "host_port", "service_config"]

DEMO_ENV_VAR = "AUTHMESH_DEMO_ENV"


def demo_facts(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The running demo's facts, from the ``demo.env`` named by ``AUTHMESH_DEMO_ENV``.

    Raises:
        ConfigError: the variable is unset or the file lacks the demo's facts.
    """
    env = os.environ if environ is None else environ
    path = env.get(DEMO_ENV_VAR)
    if not path:
        raise ConfigError(f"{DEMO_ENV_VAR} must name the demo's demo.env (authmesh demo sets it)")
    facts = read_env(Path(path))
    if "AUTHMESH_ISSUER" not in facts:
        raise ConfigError(f"{path} is not a demo.env written by authmesh demo")
    return facts


def service_config(facts: Mapping[str, str], *, audience: str, client: str) -> ServiceConfig:
    """The SDK config of a demo service: its audience and its own client credentials."""
    return ServiceConfig(
        issuer=facts["AUTHMESH_ISSUER"],
        audience=audience,
        client_id=facts[f"{client}_CLIENT_ID"],
        client_secret=facts[f"{client}_CLIENT_SECRET"],
    )


def add_health(app: FastAPI, auth: ServiceAuth) -> None:
    """``GET /healthz``: the SDK's health; 503 while it refuses tokens (no keys, stale feed)."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        report = auth.health()
        return JSONResponse(report, status_code=503 if report["status"] == "failing" else 200)


def host_port(url: str) -> tuple[str, int]:
    """Where a service of the demo listens (interface and port), from its URL in ``demo.env``."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise ConfigError(f"{url!r} needs a host and a port")
    return listen_host(parts.hostname), parts.port
