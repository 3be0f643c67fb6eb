"""The auth server restarts: services reconnect at once and refuse a blocked user
within about a second of the server being back.

``authmesh serve`` runs as a real process on SQLite, is stopped (SIGTERM) and
started again on the same port and database. The services use the SDK's default
reconnect schedule (first retry within 250 ms, then at most 500 ms apart), not the
quick one the other acceptance tests configure, because that schedule is what is
under test. The bound asserted is generous (a loaded machine); the figures are
printed (``pytest -s``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from authmesh.server import accounts
from authmesh.testing import free_port, wait_for
from authmesh.testing.authserver import AuthServerProcess, seed_demo, settings_for
from support.acceptance import (
    OfflineCore,
    Service,
    process_env,
    report_latency,
    run_service,
    service_config,
)
from support.databases import db_target
from support.harness import ADMIN, Api

#: How soon after the restarted server answers its first probe every service must
#: refuse the blocked user (the issue asks for a second; the machine is shared).
BOUND = 2.5


@dataclass
class Restart:
    """A restartable auth server, its database, and services on the default schedule."""

    process: AuthServerProcess
    offline: OfflineCore
    api: Api
    services: dict[str, Service]
    _failures: dict[str, int] = field(default_factory=dict)

    def stop(self) -> None:
        """SIGTERM the server and wait until every service saw its feed drop."""
        self.process.stop()
        for service in self.services.values():
            wait_for(lambda s=service: not s.feed_connected(), timeout=5)
        self._failures = {n: s.auth.stats.feed_failures for n, s in self.services.items()}

    def wait_out_retries(self, attempts: int) -> None:
        """Keep the server down until every service failed ``attempts`` more reconnects.

        A long exponential back-off would by then wait seconds before its next try,
        and the service would keep accepting a blocked user that long after the restart.
        """
        for name, service in self.services.items():
            wait_for(
                lambda s=service, n=name: (
                    s.auth.stats.feed_failures >= self._failures[n] + attempts
                ),
                timeout=15,
            )

    def restart(self) -> float:
        """Start the server again; returns when it answered (monotonic time)."""
        self.process.start()
        return time.monotonic()

    def synced(self) -> None:
        """Wait until every service follows the feed."""
        for service in self.services.values():
            wait_for(service.feed_connected, timeout=10)


@pytest.fixture(scope="module")
def restart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restart]:
    with db_target("sqlite", tmp_path_factory.mktemp("restart")) as target:
        port = free_port()
        offline = OfflineCore(settings_for(target, port=port))
        secret = seed_demo(offline)["service_secret"]  # type: ignore[arg-type]
        process = AuthServerProcess(process_env(target), port)
        process.start()
        api = Api(offline, secret)  # type: ignore[arg-type]
        # The SDK's reconnect defaults: what a service gets without tuning anything.
        # A staleness bound far past the outage: refusals here come from the event.
        config = service_config(
            process.url,
            secret,
            feed_backoff_initial=0.25,
            feed_backoff_max=0.5,
            max_feed_staleness=60,
        )
        try:
            with contextlib.ExitStack() as stack:
                services = {
                    name: stack.enter_context(run_service(name, config))
                    for name in ("fastapi", "flask")
                }
                yield Restart(process, offline, api, services)
        finally:
            api.close()
            process.stop()
            offline.close()


def _victim(restart: Restart) -> tuple[str, str]:
    name, password = restart.api.new_user()
    token = str(restart.api.login(name, password)["access_token"])
    for service in restart.services.values():
        assert service.whoami(token).status_code == 200
    return name, token


def _refusal_times(restart: Restart, token: str, since: float) -> dict[str, float]:
    """Seconds from ``since`` until each service answers 401 for ``token``."""
    pending = dict(restart.services)
    took: dict[str, float] = {}
    while pending:
        for name, service in list(pending.items()):
            status = service.whoami(token).status_code
            assert status in (200, 401), f"{name}: {status}"  # never a 503: the feed is fresh
            if status == 401:
                took[name] = time.monotonic() - since
                del pending[name]
        assert time.monotonic() - since < 10, f"{sorted(pending)} still accept a blocked user"
        time.sleep(0.002)
    return took


def test_a_user_blocked_while_the_server_was_down_is_refused_soon_after_restart(
    restart: Restart,
) -> None:
    restart.synced()
    name, token = _victim(restart)
    restart.stop()
    # Written to the durable log while nobody serves it, as another replica would.
    restart.offline.call(accounts.block_user(restart.offline.core, name))
    for service in restart.services.values():
        assert service.whoami(token).status_code == 200  # not known yet, feed still fresh
    restart.wait_out_retries(4)
    back = restart.restart()
    took = _refusal_times(restart, token, back)
    report_latency("blocked while down, after restart", took)
    assert max(took.values()) < BOUND, took


def test_a_user_blocked_right_after_restart_is_refused_within_the_bound(
    restart: Restart,
) -> None:
    restart.synced()
    name, token = _victim(restart)
    admin = str(restart.api.login(*ADMIN)["access_token"])
    restart.stop()
    restart.wait_out_retries(4)
    restart.restart()
    blocked_at = time.monotonic()
    response = restart.api.http.post(
        f"/admin/users/{name}/block", headers=restart.api.bearer(admin)
    )
    assert response.status_code == 200, response.text
    took = _refusal_times(restart, token, blocked_at)
    report_latency("blocked right after restart", took)
    assert max(took.values()) < BOUND, took
    restart.synced()  # and the stream is followed again
