"""Stream management (SSF 1.0 §8.1): create, read, update, replace, delete, status, verify.

Free of HTTP: the routes in ``authmesh.server.routes.ssf`` parse and frame.
Every call acts for one receiver, the client whose bearer token holds the
``ssf:stream`` scope, and sees only that client's streams.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from authmesh.errors import InsufficientScope
from authmesh.server.bearer import BearerPrincipal
from authmesh.server.context import ServerContext
from authmesh.server.errors import InvalidRequest, NotFound
from authmesh.server.ssf.events import EVENT_TYPES, verification_signal
from authmesh.server.ssf.outbox import announce_signals
from authmesh.store import ssf as ssf_store
from authmesh.store.models import SsfStreamRow

__all__ = [
    "POLL",
    "PUSH",
    "STATUSES",
    "STREAM_SCOPE",
    "create_stream",
    "delete_stream",
    "describe",
    "get_stream",
    "list_streams",
    "receiver_of",
    "set_status",
    "stream_status",
    "update_stream",
    "verify_stream",
]

#: The scope a client's token needs for the stream endpoints and poll delivery.
STREAM_SCOPE = "ssf:stream"
PUSH = "urn:ietf:rfc:8935"
POLL = "urn:ietf:rfc:8936"
STATUSES = frozenset({"enabled", "paused", "disabled"})
#: Members a receiver may not set (SSF 1.0 §8.1.1: read-only, set by the transmitter).
_READ_ONLY = frozenset({"iss", "aud", "events_supported", "events_delivered"})
_MAX_TEXT = 2000


def receiver_of(principal: BearerPrincipal) -> str:
    """The client a stream call acts for: a client-credentials token with ``ssf:stream``.

    Raises:
        InsufficientScope: a user's token, or one without the scope.
    """
    scopes = str(principal.claims.get("scope", "")).split()
    if principal.session_id is not None or STREAM_SCOPE not in scopes:
        raise InsufficientScope(
            f"stream management needs a client-credentials token with scope {STREAM_SCOPE}"
        )
    return principal.client_id


def describe(ctx: ServerContext, row: SsfStreamRow) -> dict[str, Any]:
    """The stream configuration (SSF 1.0 §8.1.1) as the receiver sees it."""
    issuer = ctx.issuer.issuer
    delivery: dict[str, Any] = {"method": row.delivery_method}
    if row.delivery_method == POLL:
        delivery["endpoint_url"] = f"{issuer}/ssf/poll/{row.stream_id}"
    elif row.endpoint_url is not None:
        delivery["endpoint_url"] = row.endpoint_url
    config: dict[str, Any] = {
        "stream_id": row.stream_id,
        "iss": issuer,
        "aud": row.audience[0] if len(row.audience) == 1 else list(row.audience),
        "events_supported": list(EVENT_TYPES),
        "events_requested": list(row.events_requested),
        "events_delivered": [e for e in EVENT_TYPES if e in row.events_requested],
        "delivery": delivery,
        "min_verification_interval": 0,
    }
    if row.description:
        config["description"] = row.description
    return config


def _text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise InvalidRequest(f"{name} must be a string of at most {_MAX_TEXT} characters")
    return value


def _events(body: Mapping[str, Any]) -> list[str]:
    requested = body.get("events_requested", list(EVENT_TYPES))
    if not isinstance(requested, list) or not all(isinstance(e, str) for e in requested):
        raise InvalidRequest("events_requested must be a list of event type URIs")
    return [e for e in requested if e in EVENT_TYPES]


def _delivery(ctx: ServerContext, body: Mapping[str, Any]) -> tuple[str, str | None, str | None]:
    delivery = body.get("delivery", {"method": POLL})
    if not isinstance(delivery, dict):
        raise InvalidRequest("delivery must be an object")
    method = delivery.get("method")
    if method == POLL:
        return POLL, None, None
    if method != PUSH:
        raise InvalidRequest(f"delivery.method must be {POLL} or {PUSH}")
    url = delivery.get("endpoint_url")
    if not isinstance(url, str) or len(url) > _MAX_TEXT:
        raise InvalidRequest("push delivery needs delivery.endpoint_url")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment:
        raise InvalidRequest("delivery.endpoint_url must be an absolute http(s) URL")
    if parts.scheme == "http" and not ctx.settings.ssf_allow_http_push:
        raise InvalidRequest("delivery.endpoint_url must use https")
    authorization = _text(delivery, "authorization_header")
    return PUSH, url, authorization


def _check_read_only(ctx: ServerContext, body: Mapping[str, Any], row: SsfStreamRow) -> None:
    current = describe(ctx, row)
    for name in _READ_ONLY & set(body):
        if body[name] != current[name]:
            raise InvalidRequest(f"{name} is set by the transmitter")


async def create_stream(
    ctx: ServerContext, client_id: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    """A new stream for the receiver ``client_id`` (SSF 1.0 §8.1.1.1)."""
    if set(body) & _READ_ONLY:
        raise InvalidRequest(f"{sorted(set(body) & _READ_ONLY)} are set by the transmitter")
    method, url, authorization = _delivery(ctx, body)
    now = ctx.now()
    row = SsfStreamRow(
        stream_id=str(uuid.uuid4()),
        client_id=client_id,
        audience=[client_id],
        events_requested=_events(body),
        delivery_method=method,
        endpoint_url=url,
        authorization_header=authorization,
        status="enabled",
        description=_text(body, "description"),
        created_at=now,
        updated_at=now,
    )
    async with ctx.db.transaction() as session:
        await ssf_store.add_stream(session, row)
    return describe(ctx, row)


async def _owned(session: Any, client_id: str, stream_id: object) -> SsfStreamRow:
    if not isinstance(stream_id, str) or not stream_id:
        raise InvalidRequest("stream_id is required")
    row = await ssf_store.get_stream(session, stream_id)
    # Another receiver's stream reads as absent: its existence is not ours to learn.
    if row is None or row.client_id != client_id:
        raise NotFound("no such stream")
    return row


async def get_stream(ctx: ServerContext, client_id: str, stream_id: str) -> dict[str, Any]:
    """One stream of the receiver."""
    async with ctx.db.transaction() as session:
        return describe(ctx, await _owned(session, client_id, stream_id))


async def list_streams(ctx: ServerContext, client_id: str) -> list[dict[str, Any]]:
    """Every stream of the receiver."""
    async with ctx.db.transaction() as session:
        return [describe(ctx, row) for row in await ssf_store.client_streams(session, client_id)]


async def update_stream(
    ctx: ServerContext, client_id: str, body: Mapping[str, Any], *, replace: bool
) -> dict[str, Any]:
    """PATCH (``replace=False``: only the members sent) or PUT (all of them)."""
    async with ctx.db.transaction() as session:
        row = await _owned(session, client_id, body.get("stream_id"))
        _check_read_only(ctx, body, row)
        if replace or "events_requested" in body:
            row.events_requested = _events(body)
        if replace or "delivery" in body:
            row.delivery_method, row.endpoint_url, row.authorization_header = _delivery(ctx, body)
        if replace or "description" in body:
            row.description = _text(body, "description")
        row.updated_at = ctx.now()
        # A receiver that reconfigures its stream is there: no back-off left to wait out.
        await ssf_store.retry_now(session, row.stream_id, now=ctx.now())
        described = describe(ctx, row)
    ctx.push_due.set()
    return described


async def delete_stream(ctx: ServerContext, client_id: str, stream_id: str) -> None:
    """Delete a stream and the SETs waiting on it."""
    async with ctx.db.transaction() as session:
        await _owned(session, client_id, stream_id)
        await ssf_store.delete_stream(session, stream_id)


async def stream_status(ctx: ServerContext, client_id: str, stream_id: str) -> dict[str, Any]:
    """SSF 1.0 §8.1.2.1: the stream's status."""
    async with ctx.db.transaction() as session:
        row = await _owned(session, client_id, stream_id)
        return _status(row)


def _status(row: SsfStreamRow) -> dict[str, Any]:
    status: dict[str, Any] = {"stream_id": row.stream_id, "status": row.status}
    if row.status_reason:
        status["reason"] = row.status_reason
    return status


async def set_status(ctx: ServerContext, client_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """SSF 1.0 §8.1.2.2: enable, pause (SETs are held) or disable (SETs are dropped)."""
    status = body.get("status")
    if status not in STATUSES:
        raise InvalidRequest(f"status must be one of {sorted(STATUSES)}")
    reason = _text(body, "reason")
    async with ctx.db.transaction() as session:
        row = await _owned(session, client_id, body.get("stream_id"))
        if status == "disabled":
            await ssf_store.drop_pending(session, row.stream_id, now=ctx.now())
        if status == "enabled":
            await ssf_store.retry_now(session, row.stream_id, now=ctx.now())
        row.status, row.status_reason, row.updated_at = status, reason, ctx.now()
        answer = _status(row)
    ctx.push_due.set()
    return answer


async def verify_stream(ctx: ServerContext, client_id: str, body: Mapping[str, Any]) -> None:
    """SSF 1.0 §8.1.4.2: queue a verification event echoing the receiver's ``state``."""
    state = _text(body, "state")
    async with ctx.db.transaction() as session:
        row = await _owned(session, client_id, body.get("stream_id"))
        if row.status == "disabled":
            raise InvalidRequest("the stream is disabled")
        await announce_signals(
            ctx, session, [verification_signal(row.stream_id, state)], streams=[row]
        )
    # Asked for now, to prove the path works: not left for the push worker's idle tick.
    ctx.push_due.set()
