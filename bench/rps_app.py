"""The service the ``rps`` part loads: ``uvicorn bench.rps_app:app``.

Four endpoints returning the same small JSON:

- ``/open`` — no authentication;
- ``/protected`` — the SDK's ``CurrentPrincipal`` dependency (``async def``,
  verified-token cache, revocation check, feed staleness check);
- ``/pyjwt`` — the baseline a team writes by hand: an ``async def`` dependency
  calling ``jwt.decode`` (PyJWT) with the issuer's public key, fetched once at
  start, and the same ``iss``/``aud``/required-claim checks; no cache;
- ``/noop-dep`` — an ``async def`` dependency that does nothing: the share of
  ``/protected``'s cost that is FastAPI's dependency machinery, not the SDK;
- ``/protected-decorator`` — the same checks as ``/protected`` through the SDK's
  ``@protected()`` decorator, which takes the ``Request`` instead of a dependency.

Configured by ``BENCH_ISSUER``, ``BENCH_AUDIENCE``, ``BENCH_CLIENT_ID`` and
``BENCH_CLIENT_SECRET`` (and ``BENCH_JWKS_MIN_REFETCH``, seconds, default 10 as
the SDK's).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import jwt
from fastapi import Depends, FastAPI, HTTPException, Request

from authmesh.service import Principal, ServiceAuth, ServiceConfig
from authmesh.service.fastapi import CurrentPrincipal, install, protected

__all__ = ["app"]

ISSUER = os.environ["BENCH_ISSUER"]
AUDIENCE = os.environ["BENCH_AUDIENCE"]
_REQUIRED = ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]

auth = ServiceAuth(
    ServiceConfig(
        issuer=ISSUER,
        audience=AUDIENCE,
        client_id=os.environ["BENCH_CLIENT_ID"],
        client_secret=os.environ["BENCH_CLIENT_SECRET"],
        jwks_min_refetch_interval=float(os.environ.get("BENCH_JWKS_MIN_REFETCH", "10")),
    )
)
app = FastAPI()
install(app, auth, middleware=False)

_jwks = httpx.get(f"{ISSUER}/.well-known/jwks.json", timeout=10).json()["keys"]
_PYJWT_KEYS = {k["kid"]: jwt.PyJWK(k) for k in _jwks}
_OPTIONS: Any = {"require": _REQUIRED}


async def pyjwt_user(request: Request) -> dict[str, Any]:
    """The hand-written PyJWT dependency."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise HTTPException(401, headers={"WWW-Authenticate": "Bearer"})
    token = header[7:]
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = _PYJWT_KEYS[kid]
        return jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm_name],
            audience=AUDIENCE,
            issuer=ISSUER,
            options=_OPTIONS,
        )
    except (jwt.InvalidTokenError, KeyError):
        raise HTTPException(401, headers={"WWW-Authenticate": "Bearer"}) from None


@app.get("/open")
async def open_endpoint() -> dict[str, Any]:
    return {"ok": True}


@app.get("/protected")
async def protected_endpoint(user: CurrentPrincipal) -> dict[str, Any]:
    return {"ok": True}


@app.get("/protected-decorator")
@protected()
async def protected_decorator(user: Principal) -> dict[str, Any]:
    return {"ok": True}


async def nothing() -> None:
    """A dependency that does nothing: what FastAPI's ``Depends`` costs by itself."""


@app.get("/noop-dep")
async def noop_dep_endpoint(_: None = Depends(nothing)) -> dict[str, Any]:
    return {"ok": True}


@app.get("/pyjwt")
async def pyjwt_endpoint(user: dict[str, Any] = Depends(pyjwt_user)) -> dict[str, Any]:
    return {"ok": True}
