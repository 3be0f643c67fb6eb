"""``python -m bench.authserver``: the auth server app with a request counter.

The same app as ``authmesh serve`` (settings from ``AUTHMESH_*``), wrapped in an
ASGI layer that counts requests per path, answered at ``GET /_bench/counts``:
the JWKS part counts key fetches where they land, at the server.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

__all__ = ["CountingApp", "main"]


class CountingApp:
    """Pure ASGI: count each HTTP request's path, serve the counts, pass the rest on."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == "/_bench/counts":
                body = json.dumps(self.counts).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            self.counts[path] += 1
        await self.app(scope, receive, send)


def main() -> None:
    """Serve until SIGTERM."""
    import uvicorn

    from authmesh.server.app import create_app
    from authmesh.server.config import load_settings

    settings = load_settings(None)
    uvicorn.run(
        CountingApp(create_app(settings)),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
