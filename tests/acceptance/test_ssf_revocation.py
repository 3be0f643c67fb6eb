"""Services following the auth server over Shared Signals poll refuse revoked tokens promptly.

The FastAPI and Flask services here are SSF receivers
(``revocation_transport="ssf-poll"``) instead of native feed subscribers: every
revocation the issuer answers reaches them as a verified SET on a long-polled
stream. Latencies go to the log, as in test_revocation.py. A service that
restarts catches up from its stream, and one that cannot reach the issuer
fails closed past its staleness bound.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from authmesh.server import clients
from authmesh.testing import wait_for
from support.acceptance import (
    Issuer,
    Service,
    measure_rejection,
    report_latency,
    run_service,
    service_config,
    start_issuer,
)
from support.databases import db_target

from .test_revocation import ACTIONS

#: As generous as the native feed's bound: a woken long poll answers in milliseconds.
BOUND = 1.0
FRAMEWORKS = ("fastapi", "flask")


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    with db_target("sqlite", tmp_path_factory.mktemp("ssf")) as target:
        issuer = start_issuer(target, feed_heartbeat=2.0, ssf_poll_wait=2.0)
        try:
            yield issuer
        finally:
            issuer.stop()


@pytest.fixture(scope="module")
def secret(issuer: Issuer) -> str:
    """The secret of ``orders-ssf``: a client allowed to manage Shared Signals streams."""
    new = issuer.thread.call(
        clients.register_client(issuer.thread.core, client_id="orders-ssf", scopes=["ssf:stream"])
    )
    assert new.secret is not None
    return new.secret


@contextlib.contextmanager
def receivers(
    issuer: Issuer,
    secret: str,
    name: str = "orders",
    client_id: str = "orders-ssf",
    **overrides: Any,
) -> Iterator[dict[str, Service]]:
    """One FastAPI and one Flask service, each with its own stream (named after ``name``)."""
    with contextlib.ExitStack() as stack:
        services = {}
        for framework in FRAMEWORKS:
            config = service_config(
                issuer.url,
                secret,
                client_id=client_id,
                revocation_transport="ssf-poll",
                ssf_receiver_name=f"{name}-{framework}",
                **overrides,
            )
            services[framework] = stack.enter_context(run_service(framework, config))
        yield services


@pytest.fixture(scope="module")
def services(issuer: Issuer, secret: str) -> Iterator[dict[str, Service]]:
    with receivers(issuer, secret) as running:
        yield running


def revoke_and_measure(
    issuer: Issuer, services: dict[str, Service], action: str, transport: str
) -> dict[str, float]:
    """Revoke a user's token by ``action``; seconds until each service refused it.

    Also checks that a second session of the user ends with it (unless one token
    was revoked); every service must follow the issuer over ``transport``.
    """
    api = issuer.api
    name, password = api.new_user()
    token = str(api.login(name, password)["access_token"])
    other = str(api.login(name, password)["access_token"])
    for service in services.values():
        assert service.accepts(token) and service.accepts(token)  # now cached as verified
        wait_for(service.feed_connected)
        assert service.auth.feed is not None and service.auth.feed.mode == transport

    response = ACTIONS[action](api, name, password, token)
    assert response.status_code in (200, 204), response.text
    latencies = measure_rejection(services, token)

    report_latency(f"{transport} {action}", latencies)
    assert max(latencies.values()) < BOUND, latencies
    for service in services.values():
        if action == "revoke-jti":
            assert service.accepts(other)
        else:
            # Pushed one SET at a time: the other session's may come just after this one's.
            wait_for(lambda s=service: not s.accepts(other), timeout=BOUND)
    return latencies


@pytest.mark.parametrize("action", list(ACTIONS))
def test_revocation_over_ssf_poll_reaches_every_service_within_a_second(
    issuer: Issuer, services: dict[str, Service], action: str, record_property: Any
) -> None:
    latencies = revoke_and_measure(issuer, services, action, "ssf-poll")
    record_property("ssf_latency_ms", {k: round(v * 1000, 1) for k, v in latencies.items()})


def test_a_restarted_service_catches_up_from_its_stream(issuer: Issuer, secret: str) -> None:
    api = issuer.api
    name, password = api.new_user()
    token = str(api.login(name, password)["access_token"])
    with receivers(issuer, secret, name="restart") as first:
        assert first["fastapi"].accepts(token)
    # Down while the user is blocked: the SET waits, unacknowledged, on the stream.
    assert api.admin("POST", f"/admin/users/{name}/block").status_code == 200
    with receivers(issuer, secret, name="restart") as again:
        for service in again.values():
            assert not service.accepts(token)


def test_a_service_that_hears_nothing_fails_closed(issuer: Issuer) -> None:
    api = issuer.api
    core = issuer.thread.core
    new = issuer.thread.call(
        clients.register_client(core, client_id="orders-cut", scopes=["ssf:stream"])
    )
    assert new.secret is not None
    token = str(api.login()["access_token"])
    with receivers(
        issuer, new.secret, name="cut", client_id="orders-cut", max_feed_staleness=1.0
    ) as cut:
        service = cut["fastapi"]
        wait_for(service.feed_connected)
        assert service.accepts(token)
        assert service.health()["status"] == "ok"
        # Its client is removed at the issuer: no poll is answered any more.
        assert issuer.thread.call(clients.remove_client(core, "orders-cut"))
        wait_for(lambda: service.health()["status"] == "failing", timeout=6)
        assert not service.accepts(token)
