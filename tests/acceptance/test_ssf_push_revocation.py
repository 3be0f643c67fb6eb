"""Services following the auth server over Shared Signals push refuse revoked tokens promptly.

The FastAPI, Flask and Strawberry services here are SSF push receivers
(``revocation_transport="ssf-push"``): the real auth server POSTs every SET to
the endpoint each service serves (RFC 8935). Latencies go to the log, as in
test_revocation.py. A service that restarts catches up from its stream, one
the issuer cannot reach fails closed past its staleness bound, and SETs that
are forged, replayed or sent without the stream's authorization are refused
with the RFC 8935 answer.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from authmesh.jose import Key, sign_jwt
from authmesh.server import clients
from authmesh.service._ssf_sets import EVENTS_REQUESTED
from authmesh.store import ssf as ssf_store
from authmesh.store.models import SsfOutboxRow
from authmesh.testing import wait_for
from authmesh.testing.net import free_port
from support.acceptance import (
    Issuer,
    Service,
    run_service,
    service_config,
    start_issuer,
)
from support.databases import db_target
from support.ssf_receiver import PUSH, SpecReceiver

from .test_ssf_revocation import revoke_and_measure

FRAMEWORKS = ("fastapi", "flask", "graphql")
CLIENT = "orders-push"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    with db_target("sqlite", tmp_path_factory.mktemp("ssf-push")) as target:
        issuer = start_issuer(target, feed_heartbeat=2.0, ssf_allow_http_push=True)
        try:
            yield issuer
        finally:
            issuer.stop()


@pytest.fixture(scope="module")
def secret(issuer: Issuer) -> str:
    """The secret of ``orders-push``: a client allowed to manage Shared Signals streams."""
    new = issuer.thread.call(
        clients.register_client(issuer.thread.core, client_id=CLIENT, scopes=["ssf:stream"])
    )
    assert new.secret is not None
    return new.secret


@contextlib.contextmanager
def pushed_to(
    issuer: Issuer,
    secret: str,
    name: str,
    frameworks: tuple[str, ...] = FRAMEWORKS,
    *,
    unreachable: bool = False,
    **overrides: Any,
) -> Iterator[dict[str, Service]]:
    """Services receiving pushes, each on a port of its own named in its stream.

    ``unreachable``: the stream names a port nobody listens on (the service is
    up, the issuer cannot reach it).
    """
    with contextlib.ExitStack() as stack:
        services = {}
        for framework in frameworks:
            port = free_port()
            pushed = free_port() if unreachable else port
            config = service_config(
                issuer.url,
                secret,
                client_id=CLIENT,
                revocation_transport="ssf-push",
                ssf_receiver_name=f"{name}-{framework}",
                ssf_push_url=f"http://127.0.0.1:{pushed}/ssf/events",
                **overrides,
            )
            # The GraphQL service refuses every request without a token: not the pushes.
            required = framework == "graphql"
            services[framework] = stack.enter_context(
                run_service(framework, config, port=port, required=required)
            )
        yield services


@contextlib.contextmanager
def silent_stream(issuer: Issuer, secret: str) -> Iterator[None]:
    """Another push stream, whose endpoint takes connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        receiver = SpecReceiver(issuer.url, CLIENT, secret)
        try:
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/events"
            receiver.create_stream(EVENTS_REQUESTED, {"method": PUSH, "endpoint_url": url})
            yield
        finally:
            receiver.close()


@pytest.fixture(scope="module")
def services(issuer: Issuer, secret: str) -> Iterator[dict[str, Service]]:
    # A receiver that hangs every push (for 5 s each) must hold up no other receiver.
    with silent_stream(issuer, secret), pushed_to(issuer, secret, "orders") as running:
        yield running


#: A user, the sessions of a user, one token: each subject format of docs/ssf.md "Mapping".
PUSHED_ACTIONS = ["block", "logout-all", "revoke-jti"]


@pytest.mark.parametrize("action", PUSHED_ACTIONS)
def test_revocation_over_ssf_push_reaches_every_service_within_a_second(
    issuer: Issuer, services: dict[str, Service], action: str, record_property: Any
) -> None:
    latencies = revoke_and_measure(issuer, services, action, "ssf-push")
    record_property("ssf_push_latency_ms", {k: round(v * 1000, 1) for k, v in latencies.items()})


def test_a_restarted_service_catches_up_from_its_stream(issuer: Issuer, secret: str) -> None:
    api = issuer.api
    name, password = api.new_user()
    token = str(api.login(name, password)["access_token"])
    frameworks = ("fastapi", "flask")
    with pushed_to(issuer, secret, "restart", frameworks) as first:
        assert all(service.accepts(token) for service in first.values())
    # Down while the user is blocked: the pushes fail and the transmitter backs off.
    assert api.admin("POST", f"/admin/users/{name}/block").status_code == 200
    with pushed_to(issuer, secret, "restart", frameworks) as again:
        for service in again.values():
            assert not service.accepts(token)
        for service in again.values():
            # Caught up by poll before it served; pushed to from then on.
            wait_for(lambda s=service: s.auth.feed is not None and s.auth.feed.mode == "ssf-push")


def test_a_service_the_issuer_cannot_reach_fails_closed(issuer: Issuer, secret: str) -> None:
    token = str(issuer.api.login()["access_token"])
    staleness = 1.5
    with (
        pushed_to(issuer, secret, "idle", ("fastapi",), max_feed_staleness=staleness) as idle,
        pushed_to(
            issuer,
            secret,
            "cut",
            ("fastapi", "flask"),
            unreachable=True,
            max_feed_staleness=staleness,
        ) as cut,
    ):
        started = time.monotonic()
        for service in cut.values():
            # Caught up at start (by poll); then no push arrives.
            assert service.health()["feed"]["heard_once"]
            wait_for(lambda s=service: s.health()["status"] == "failing", timeout=5)
            assert not service.accepts(token)
            # Its verification requests go unanswered: it says why.
            wait_for(lambda s=service: "reach" in str(s.health()["feed"]["last_error"]))
        # Pushes that do arrive (verifications asked for when idle) keep a service fresh.
        healthy = idle["fastapi"]
        wait_for(lambda: time.monotonic() - started > 1.5 * staleness, timeout=5)
        assert healthy.health()["status"] == "ok"
        assert healthy.accepts(token)


def _stream_of(issuer: Issuer, description: str) -> str:
    async def find() -> str:
        async with issuer.thread.core.db.transaction() as session:
            streams = await ssf_store.client_streams(session, CLIENT)
        return next(s.stream_id for s in streams if s.description == description)

    return issuer.thread.call(find())


def _delivered(issuer: Issuer, stream_id: str) -> list[str]:
    async def read() -> list[str]:
        async with issuer.thread.core.db.transaction() as session:
            rows = await session.execute(
                select(SsfOutboxRow.set_token).where(
                    SsfOutboxRow.stream_id == stream_id,
                    SsfOutboxRow.acknowledged_at.is_not(None),
                    SsfOutboxRow.attempts > 0,  # pushed (a poll acknowledgement counts none)
                    SsfOutboxRow.last_error.is_(None),  # and accepted
                )
            )
            return list(rows.scalars())

    return issuer.thread.call(read())


def _set(key: Key, typ: str = "secevent+jwt", **claims: Any) -> str:
    body = {
        "aud": CLIENT,
        "jti": uuid.uuid4().hex,
        "iat": int(time.time()),
        "sub_id": {"format": "iss_sub", "iss": "x", "sub": "someone"},
        "events": {ACCOUNT_DISABLED: {}},
        **claims,
    }
    return sign_jwt(body, key, typ=typ)


def _unsigned(issuer: str) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"secevent+jwt"}').rstrip(b"=")
    body = {"iss": issuer, "aud": CLIENT, "jti": uuid.uuid4().hex, "iat": int(time.time())}
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=")
    return (header + b"." + payload + b".").decode()


def test_bad_sets_are_refused_with_the_rfc_8935_error(
    issuer: Issuer, services: dict[str, Service]
) -> None:
    real = issuer.thread.core.keys.signing_key()
    url = issuer.url
    impostor = Key.generate(real.alg, kid=real.kid)
    for framework, service in services.items():
        endpoint = service.auth.ssf_push
        assert endpoint is not None
        # A SET the issuer really pushed to this service, sent again.
        stream = _stream_of(issuer, f"authmesh receiver orders-{framework}")
        wait_for(lambda s=stream: bool(_delivered(issuer, s)), timeout=5)
        replayed = _delivered(issuer, stream)[-1]
        cases = {
            "forged": (_set(impostor, iss=url), "authentication_failed"),
            "unsigned": (_unsigned(url), "invalid_key"),
            "other audience": (_set(real, iss=url, aud="catalog"), "invalid_audience"),
            "other issuer": (_set(real, iss="https://evil.test"), "invalid_issuer"),
            "not a SET": (_set(real, typ="at+jwt", iss=url), "invalid_request"),
            "too old": (_set(real, iss=url, iat=int(time.time()) - 7200), "invalid_request"),
            "replayed": (replayed, "invalid_request"),
        }
        for case, (token, err) in cases.items():
            answer = push(service, token, endpoint.authorization)
            assert answer.status_code == 400, (framework, case, answer.text)
            assert answer.headers["content-type"] == "application/json"
            assert answer.json()["err"] == err, (framework, case, answer.text)
        forged_block = _set(impostor, iss=url)
        for authorization in (None, "Bearer wrong", f"{endpoint.authorization}x"):
            answer = push(service, forged_block, authorization)
            assert answer.status_code == 401, (framework, answer.text)
            assert answer.json()["err"] == "authentication_failed"
        answer = push(service, replayed, endpoint.authorization, content_type="application/jwt")
        assert answer.status_code == 400 and answer.json()["err"] == "invalid_request"
        assert service.http.get(endpoint.path).status_code == 405
        assert service.auth.health()["status"] == "ok"


def push(
    service: Service,
    token: str,
    authorization: str | None,
    *,
    content_type: str = "application/secevent+jwt",
) -> httpx.Response:
    """POST a SET to the service's push endpoint, as a transmitter would (RFC 8935 §2)."""
    endpoint = service.auth.ssf_push
    assert endpoint is not None
    headers = {"Content-Type": content_type, "Accept": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return service.http.post(endpoint.path, content=token.encode(), headers=headers)
