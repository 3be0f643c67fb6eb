"""Starlette / ASGI: the middleware answering ``/healthz``, ``/readyz`` and ``/metrics``
ahead of the app (set up by :func:`authmesh.service.starlette.mount_operations`)."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from authmesh.service.operations import MetricsPage, liveness, readiness
from authmesh.service.service_auth import ServiceAuth

__all__ = ["OperationsMiddleware"]


class OperationsMiddleware:
    """Pure ASGI middleware answering the operations paths (see :func:`mount_operations`)."""

    def __init__(
        self,
        app: ASGIApp,
        auth: ServiceAuth,
        paths: tuple[str, str, str],
        page: MetricsPage | None,
    ) -> None:
        self.app = app
        self.auth = auth
        self.healthz, self.readyz, self.metrics = paths
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        response: Response
        if path == self.healthz or path == self.readyz:
            probe = liveness() if path == self.healthz else readiness(self.auth)
            response = JSONResponse(
                probe.body, status_code=probe.status, headers={"Cache-Control": "no-store"}
            )
        elif path == self.metrics and self.page is not None:
            response = Response(self.page.render(), media_type=self.page.content_type)
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)
