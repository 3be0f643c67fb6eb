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
    """200 when the database answers, 503 otherwise."""
    ctx = get_context(request)
    try:
        async with ctx.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
    return JSONResponse(
        {
            "status": "ok",
            "database": "up",
            "feed_backend": ctx.hub.backend,
            "latest_cursor": ctx.hub.latest,
        }
    )


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    """Counters in the Prometheus text format."""
    m = get_metrics(request)
    ctx = get_context(request)
    m.collect_state(latest_cursor=ctx.hub.latest, pool=ctx.db.engine.pool)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
