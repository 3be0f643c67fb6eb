"""The push endpoint (:mod:`._ssf_push`) served over ASGI and WSGI: read, delegate, write.

:class:`SsfPushASGIMiddleware` is added by the Starlette/FastAPI ``install``
(and so serves Strawberry apps, hosted by them); :class:`SsfPushWSGIMiddleware`
wraps a Flask app's ``wsgi_app`` and serves ahead of the plain WSGI adapter.
Both answer only ``ssf_push_path`` and sit in front of the bearer-token check:
the transmitter's ``Authorization`` is the stream's secret, not an access token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from authmesh.service._ssf_push import MAX_BODY, METHOD_NOT_ALLOWED, PushAnswer, SsfPushEndpoint

__all__ = ["SsfPushASGIMiddleware", "SsfPushWSGIMiddleware"]

ASGIApp = Callable[..., Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class SsfPushASGIMiddleware:
    """Pure ASGI middleware answering the push endpoint's path (RFC 8935)."""

    def __init__(self, app: ASGIApp, endpoint: SsfPushEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.endpoint.path:
            await self.app(scope, receive, send)
            return
        answer = METHOD_NOT_ALLOWED
        if scope["method"] == "POST":
            headers = scope["headers"]
            authorization = [v.decode("latin-1") for k, v in headers if k == b"authorization"]
            ctype = next((v.decode("latin-1") for k, v in headers if k == b"content-type"), None)
            body = await _read_body(receive)
            answer = await self.endpoint.areceive(authorization, ctype, body)
        headers_out = [(k.lower().encode(), v.encode()) for k, v in answer.headers]
        headers_out.append((b"content-length", str(len(answer.body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers_out})
        await send({"type": "http.response.body", "body": answer.body})


async def _read_body(receive: Any) -> bytes:
    """The request body, cut just past :data:`MAX_BODY` (enough to refuse it as too large)."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return body
        chunk: bytes = message.get("body", b"")
        body += chunk
        if len(body) > MAX_BODY or not message.get("more_body", False):
            return body[: MAX_BODY + 1]


class SsfPushWSGIMiddleware:
    """WSGI middleware answering the push endpoint's path (RFC 8935)."""

    def __init__(self, app: WSGIApp, endpoint: SsfPushEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self.endpoint.path:
            return self.app(environ, start_response)
        return self.answer(environ, start_response)

    def answer(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """Answer a request to the push path."""
        answer: PushAnswer = METHOD_NOT_ALLOWED
        if environ.get("REQUEST_METHOD") == "POST":
            header = environ.get("HTTP_AUTHORIZATION")
            try:
                length = max(0, int(environ.get("CONTENT_LENGTH") or 0))
            except ValueError:
                length = 0
            body = environ["wsgi.input"].read(min(length, MAX_BODY + 1)) if length else b""
            answer = self.endpoint.receive(
                [] if header is None else [header], environ.get("CONTENT_TYPE"), body
            )
        status = f"{answer.status} {HTTPStatus(answer.status).phrase}"
        start_response(status, [*answer.headers, ("Content-Length", str(len(answer.body)))])
        return [answer.body]
