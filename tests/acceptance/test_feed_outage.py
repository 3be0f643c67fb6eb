"""The auth server goes away: services keep verifying, fail closed past the
staleness bound (or stay open by choice), and catch up without losing an event.

``authmesh serve`` runs as a real process on SQLite and is stopped (SIGTERM) and
started again on the same port; events are written to its database while it is
down, as another replica or the operator CLI would.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from authmesh.server import accounts
from authmesh.testing import free_port, wait_for
from authmesh.testing.authserver import AuthServerProcess, seed_demo, settings_for
from support.acceptance import (
    OfflineCore,
    Service,
    measure_rejection,
    process_env,
    report_latency,
    run_service,
    service_config,
)
from support.databases import db_target
from support.harness import Api

STALENESS = 1.5
SERVER = {"feed_heartbeat": 0.25, "feed_poll_interval": 0.2}


@dataclass
class Outage:
    """A restartable auth-server process, its database, and services trusting it."""

    process: AuthServerProcess
    offline: OfflineCore
    api: Api
    closed: dict[str, Service]  # fail closed (the default)
    open: Service  # fail_open=True

    def restart(self) -> float:
        """Start the process again; returns how long it took."""
        started = time.monotonic()
        self.process.start()
        return time.monotonic() - started

    def stop(self) -> None:
        """SIGTERM the process and wait for it; every service notices."""
        started = time.monotonic()
        self.process.stop()
        # A server that hangs on its open feed streams would be killed after 10 s.
        assert time.monotonic() - started < 5, "authmesh serve was slow to stop"
        for service in (*self.closed.values(), self.open):
            wait_for(lambda s=service: not s.feed_connected(), timeout=5)

    def everyone(self) -> list[Service]:
        """Every service."""
        return [*self.closed.values(), self.open]


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    with db_target("sqlite", tmp_path_factory.mktemp("outage")) as target:
        port = free_port()
        offline = OfflineCore(settings_for(target, port=port, **SERVER))
        secret = seed_demo(offline)["service_secret"]  # type: ignore[arg-type]
        process = AuthServerProcess(process_env(target, **SERVER), port)
        process.start()
        api = Api(offline, secret)  # type: ignore[arg-type]
        try:
            closed = service_config(process.url, secret, max_feed_staleness=STALENESS)
            opened = service_config(
                process.url, secret, max_feed_staleness=STALENESS, fail_open=True
            )
            with contextlib.ExitStack() as stack:
                services = {
                    name: stack.enter_context(run_service(name, closed))
                    for name in ("fastapi", "flask")
                }
                fail_open = stack.enter_context(run_service("fastapi", opened))
                yield Outage(process, offline, api, services, fail_open)
        finally:
            api.close()
            process.stop()
            offline.close()


def _user_token(outage: Outage) -> tuple[str, str]:
    name, password = outage.api.new_user()
    return name, str(outage.api.login(name, password)["access_token"])


def _wait_synced(outage: Outage) -> None:
    for service in outage.everyone():
        wait_for(service.feed_connected, timeout=10)
        wait_for(lambda s=service: s.health()["status"] == "ok", timeout=5)


def test_subscribers_catch_up_on_events_written_while_the_server_was_down(
    outage: Outage,
) -> None:
    _wait_synced(outage)
    victims = [_user_token(outage) for _ in range(5)]
    bystander = _user_token(outage)
    for service in outage.everyone():
        assert all(service.accepts(token) for _, token in [*victims, bystander])

    outage.stop()
    for name, _ in victims:  # five events on the durable log, nobody listening
        outage.offline.call(accounts.block_user(outage.offline.core, name))
    took = outage.restart()

    for service in outage.everyone():
        wait_for(service.feed_connected, timeout=10)
        wait_for(lambda s=service: s.accepts(bystander[1]), timeout=5)  # fresh again
        for _, token in victims:
            response = service.whoami(token)
            assert response.status_code == 401, f"{service.framework}: an event was lost"
            assert "unreachable" not in response.json()["error_description"]
    print(f"auth server restarted in {took:.2f} s")

    # And the stream is live again after the reconnect.
    name, _ = bystander
    response = outage.api.admin("POST", f"/admin/users/{name}/block")
    assert response.status_code == 200
    latencies = measure_rejection({s.framework: s for s in outage.closed.values()}, bystander[1])
    report_latency("block after a restart", latencies)
    assert max(latencies.values()) < 1.0


def test_verifying_goes_on_while_down_then_fails_closed_or_open(outage: Outage) -> None:
    _wait_synced(outage)
    _, seen = _user_token(outage)
    _, unseen = _user_token(outage)  # never shown to a service before the outage
    for service in outage.everyone():
        assert service.accepts(seen)

    outage.process.stop()
    down_at = time.monotonic()
    # Within the bound the cached JWKS and revocation state still serve.
    for service in outage.everyone():
        assert service.accepts(seen) and service.accepts(unseen)
    assert time.monotonic() - down_at < STALENESS, "too slow to check within the bound"

    for service in outage.closed.values():
        wait_for(lambda s=service: not s.accepts(seen), timeout=5)
    refused_after = time.monotonic() - down_at
    assert refused_after >= STALENESS - 0.5, f"refused after {refused_after:.2f} s"
    for service in outage.closed.values():
        response = service.whoami(unseen)
        # The token is fine; the service cannot check it now: 503, not 401 invalid_token.
        assert response.status_code == 503, service.framework
        assert int(response.headers["retry-after"]) > 0
        assert "www-authenticate" not in response.headers
        assert response.json()["error"] == "temporarily_unavailable"
        assert "revocation feed unreachable" in response.json()["error_description"]
        health = service.health()
        assert health["status"] == "failing"
        assert health["feed"]["stale"] is True and health["feed"]["connected"] is False
    # Fail open is an explicit choice: still accepted, reported as degraded.
    assert outage.open.accepts(seen) and outage.open.accepts(unseen)
    health = outage.open.health()
    assert health["status"] == "degraded"
    assert health["feed"]["stale"] is True and health["feed"]["fail_open"] is True

    outage.restart()
    for service in outage.everyone():
        wait_for(lambda s=service: s.accepts(seen), timeout=10)
        wait_for(lambda s=service: s.health()["status"] == "ok", timeout=5)
