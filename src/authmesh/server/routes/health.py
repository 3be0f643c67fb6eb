"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from authmesh.server.readiness import Readiness
from authmesh.server.routes.common import NO_STORE, get_context, get_metrics
from authmesh.server.unavailable import RETRY_AFTER_SECONDS

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process serves requests")
async def healthz(request: Request) -> JSONResponse:
    """200 while the process runs, so an outage elsewhere never restarts it.

    ``database`` is what the last use of the database showed (``/readyz`` asks it);
    ``redis``, when used, is asked within its short timeout: a process without Redis
    still serves (refresh and client credentials need none) but says it is degraded.
    """
    ctx = get_context(request)
    body: dict[str, object] = {
        "status": "ok",
        "database": "up" if ctx.db.reachable else "down",
        "feed_backend": ctx.hub.backend,
        "latest_cursor": ctx.hub.latest,
    }
    redis_up = await ctx.guard.redis_reachable()
    if redis_up is not None:
        body["redis"] = "up" if redis_up else "down"
        if not redis_up:
            body["status"] = "degraded"
    return JSONResponse(body, headers=NO_STORE)


@router.get("/readyz", summary="Readiness: the database and Redis answer")
async def readyz(request: Request) -> JSONResponse:
    """200 when every dependency answers within its bound; 503 with ``Retry-After`` otherwise."""
    ctx = get_context(request)
    readiness: Readiness = request.app.state.readiness
    checks = await readiness.check()
    ready = not ctx.hub.draining and all(state != "down" for state in checks.values())
    body = {"status": "ready" if ready else "unavailable", **checks}
    if ready:
        return JSONResponse(body, headers=NO_STORE)
    return JSONResponse(
        body, status_code=503, headers={**NO_STORE, "Retry-After": str(RETRY_AFTER_SECONDS)}
    )


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    """Counters in the Prometheus text format."""
    m = get_metrics(request)
    ctx = get_context(request)
    m.collect_state(latest_cursor=ctx.hub.latest, pool=ctx.db.engine.pool)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
