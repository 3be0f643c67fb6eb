"""The service the ``rps`` part loads: ``uvicorn bench.rps_app:app``.

Five endpoints returning the same small JSON:

- ``/open`` — no authentication;
- ``/protected`` — the README's form: ``Depends(require(scopes="orders:read"))``
  (an ``async def`` dependency; verified-token cache, revocation check, feed
  staleness check, the scope);
- ``/protected-decorator`` — the same checks through the SDK's
  ``@protected(scopes="orders:read")``, which takes the ``Request`` instead of a
  dependency;
- ``/noop-dep`` — an ``async def`` dependency that does nothing: the share of
  ``/protected``'s cost that is FastAPI's dependency machinery, not the SDK;
- ``/pyjwt`` — the baseline a team writes by hand: an ``async def`` dependency
  calling ``jwt.decode`` (PyJWT) with the issuer's public key, fetched once at
  start, and the same ``iss``/``aud``/required-claim checks; no cache.

Each endpoint is the one route of its own FastAPI app (after FastAPI's default
documentation routes, as in any app), and :data:`app` hands each request to the
app of its path. FastAPI tries an app's routes in order, and each route passed
over costs a path match and FastAPI's own route checks: in one app, an endpoint
registered later would pay for the ones before it, and the comparison with
``/open`` would not be like for like.

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
from starlette.types import Receive, Scope, Send

from authmesh.service import Principal, ServiceAuth, ServiceConfig
from authmesh.service.fastapi import install, protected, require

__all__ = ["app"]

ISSUER = os.environ["BENCH_ISSUER"]
AUDIENCE = os.environ["BENCH_AUDIENCE"]
#: What every protected endpoint demands (the tokens of the bench carry it).
SCOPE = "orders:read"
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

_jwks = httpx.get(f"{ISSUER}/.well-known/jwks.json", timeout=10).json()["keys"]
_PYJWT_KEYS = {k["kid"]: jwt.PyJWK(k) for k in _jwks}
_OPTIONS: Any = {"require": _REQUIRED}


def _service(*, lifespan: bool = False) -> FastAPI:
    """A FastAPI app served by the one ``auth`` (the middleware off, as before)."""
    service = FastAPI()
    install(service, auth, middleware=False, lifespan=lifespan)
    return service


# The app of /open starts and stops the JWKS cache and the feed for all of them.
open_app = _service(lifespan=True)
protected_app = _service()
decorator_app = _service()
noop_app = _service()
pyjwt_app = _service()


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


@open_app.get("/open")
async def open_endpoint() -> dict[str, Any]:
    return {"ok": True}


@protected_app.get("/protected")
async def protected_endpoint(
    user: Principal = Depends(require(scopes=SCOPE)),
) -> dict[str, Any]:
    return {"ok": True}


@decorator_app.get("/protected-decorator")
@protected(scopes=SCOPE)
async def protected_decorator(user: Principal) -> dict[str, Any]:
    return {"ok": True}


async def nothing() -> None:
    """A dependency that does nothing: what FastAPI's ``Depends`` costs by itself."""


@noop_app.get("/noop-dep")
async def noop_dep_endpoint(_: None = Depends(nothing)) -> dict[str, Any]:
    return {"ok": True}


@pyjwt_app.get("/pyjwt")
async def pyjwt_endpoint(user: dict[str, Any] = Depends(pyjwt_user)) -> dict[str, Any]:
    return {"ok": True}


_APP_OF_PATH: dict[str, FastAPI] = {
    "/open": open_app,
    "/protected": protected_app,
    "/protected-decorator": decorator_app,
    "/noop-dep": noop_app,
    "/pyjwt": pyjwt_app,
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The service: each path to its app (other paths and the lifespan to ``/open``'s)."""
    await _APP_OF_PATH.get(scope.get("path", ""), open_app)(scope, receive, send)
