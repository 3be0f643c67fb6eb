"""``/static/…``: the stylesheet of the pages, served by the server itself (no CDN)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from authmesh.server.errors import NotFound
from authmesh.server.web.render import STATIC_DIR

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """A file of the pages' static folder, cacheable for a day."""
    path = STATIC_DIR / name
    media_type = _TYPES.get(path.suffix)
    if "/" in name or name.startswith(".") or media_type is None or not path.is_file():
        raise NotFound("no such file")
    return Response(
        path.read_bytes(),
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400"},
    )
