"""Liveness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from authmesh.server.routes.common import get_context, get_metrics

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness and database reachability")
async def healthz(request: Request) -> JSONResponse:
    """200 when the database answers, 503 otherwise; says whether Redis answers, when used."""
    ctx = get_context(request)
    try:
        async with ctx.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
    body: dict[str, object] = {
        "status": "ok",
        "database": "up",
        "feed_backend": ctx.hub.backend,
        "latest_cursor": ctx.hub.latest,
    }
    # Still 200 while Redis is down (the process serves, refresh and client
    # credentials need no Redis), but never a claim that Redis is fine.
    redis_up = await ctx.guard.redis_reachable()
    if redis_up is not None:
        body["redis"] = "up" if redis_up else "down"
        if not redis_up:
            body["status"] = "degraded"
    return JSONResponse(body)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    """Counters in the Prometheus text format."""
    m = get_metrics(request)
    m.feed_latest_cursor.set(get_context(request).hub.latest)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
