"""Shared Signals transmitter over HTTP (OpenID SSF 1.0, RFC 8936): contract in docs/ssf.md.

Every endpoint but the metadata needs a bearer token from the client
credentials grant whose scope holds ``ssf:stream``; a receiver sees and
manages its own streams only. What each call does is in
:mod:`authmesh.server.ssf`; this module parses and frames.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from authmesh.server.errors import InvalidRequest
from authmesh.server.routes.common import NO_STORE, bearer_principal, get_context, no_store_json
from authmesh.server.ssf import poll as poll_delivery
from authmesh.server.ssf import streams
from authmesh.server.ssf.streams import POLL, PUSH

__all__ = ["router"]

router = APIRouter(tags=["shared signals"])
_MAX_BODY = 64 * 1024
_StreamId = Annotated[str | None, Query(max_length=64)]


async def _receiver(request: Request) -> str:
    return streams.receiver_of(await bearer_principal(request))


async def _json_body(request: Request) -> Any:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise InvalidRequest("the body must be application/json")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            raise InvalidRequest("the request body is too large")
    try:
        return json.loads(body or b"{}")
    except ValueError:
        raise InvalidRequest("the body is not valid JSON") from None


async def _object(request: Request) -> dict[str, Any]:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


@router.get("/.well-known/ssf-configuration", summary="Shared Signals transmitter metadata")
async def configuration(request: Request) -> JSONResponse:
    """SSF 1.0 §7.1: where a receiver finds the stream endpoints and the keys."""
    issuer = get_context(request).issuer.issuer
    return JSONResponse(
        {
            "spec_version": "1_0",
            "issuer": issuer,
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "delivery_methods_supported": [PUSH, POLL],
            "configuration_endpoint": f"{issuer}/ssf/streams",
            "status_endpoint": f"{issuer}/ssf/status",
            "verification_endpoint": f"{issuer}/ssf/verify",
            "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6749"}],
            "default_subjects": "ALL",
        },
        headers={"Cache-Control": "max-age=300"},
    )


@router.post("/ssf/streams", summary="Create a stream", status_code=201)
async def create_stream(request: Request) -> JSONResponse:
    """SSF 1.0 §8.1.1.1."""
    client_id = await _receiver(request)
    body = await _object(request)
    return no_store_json(await streams.create_stream(get_context(request), client_id, body), 201)


@router.get("/ssf/streams", summary="Read a stream, or list the receiver's streams")
async def read_streams(request: Request, stream_id: _StreamId = None) -> JSONResponse:
    """SSF 1.0 §8.1.1.2."""
    client_id = await _receiver(request)
    ctx = get_context(request)
    if stream_id is None:
        return no_store_json(await streams.list_streams(ctx, client_id))
    return no_store_json(await streams.get_stream(ctx, client_id, stream_id))


@router.patch("/ssf/streams", summary="Update a stream")
async def update_stream(request: Request) -> JSONResponse:
    """SSF 1.0 §8.1.1.3: the members sent replace theirs."""
    client_id = await _receiver(request)
    body = await _object(request)
    ctx = get_context(request)
    return no_store_json(await streams.update_stream(ctx, client_id, body, replace=False))


@router.put("/ssf/streams", summary="Replace a stream")
async def replace_stream(request: Request) -> JSONResponse:
    """SSF 1.0 §8.1.1.4: every member the receiver may set is replaced."""
    client_id = await _receiver(request)
    body = await _object(request)
    ctx = get_context(request)
    return no_store_json(await streams.update_stream(ctx, client_id, body, replace=True))


@router.delete("/ssf/streams", summary="Delete a stream", status_code=204)
async def delete_stream(request: Request, stream_id: _StreamId = None) -> Response:
    """SSF 1.0 §8.1.1.5."""
    client_id = await _receiver(request)
    if stream_id is None:
        raise InvalidRequest("stream_id is required")
    await streams.delete_stream(get_context(request), client_id, stream_id)
    return Response(status_code=204, headers=NO_STORE)


@router.get("/ssf/status", summary="Read a stream's status")
async def read_status(request: Request, stream_id: _StreamId = None) -> JSONResponse:
    """SSF 1.0 §8.1.2.1."""
    client_id = await _receiver(request)
    if stream_id is None:
        raise InvalidRequest("stream_id is required")
    return no_store_json(await streams.stream_status(get_context(request), client_id, stream_id))


@router.post("/ssf/status", summary="Enable, pause or disable a stream")
async def update_status(request: Request) -> JSONResponse:
    """SSF 1.0 §8.1.2.2."""
    client_id = await _receiver(request)
    body = await _object(request)
    return no_store_json(await streams.set_status(get_context(request), client_id, body))


@router.post("/ssf/verify", summary="Ask for a verification event", status_code=204)
async def verify(request: Request) -> Response:
    """SSF 1.0 §8.1.4.2: a verification SET echoing ``state`` is queued on the stream."""
    client_id = await _receiver(request)
    body = await _object(request)
    await streams.verify_stream(get_context(request), client_id, body)
    return Response(status_code=204, headers=NO_STORE)


@router.post("/ssf/poll/{stream_id}", summary="Poll a stream for SETs (RFC 8936)")
async def poll(request: Request, stream_id: str) -> JSONResponse:
    """RFC 8936 §2: acknowledge, then receive the SETs due (held open while none is)."""
    client_id = await _receiver(request)
    parsed = poll_delivery.PollRequest.parse(await _json_body(request))
    result = await poll_delivery.poll(
        get_context(request), client_id, stream_id[:64], parsed, gone=request.is_disconnected
    )
    return no_store_json(result)
