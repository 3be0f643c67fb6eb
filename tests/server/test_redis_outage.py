"""Redis down or hung, at start and mid-run: only sign-ins notice, by the documented policy.

The auth server reaches Redis through a :class:`TcpProxy`, which the tests kill
(connections reset, new ones refused) or freeze (a partition: nothing moves).
Refresh and client credentials never touch Redis and keep answering at once;
sign-ins fall back to per-process limits (the default) or are refused with 503
and ``Retry-After``; block and unblock commit and answer 200, and the block
reaches the revocation feed. Times are bounded generously (a loaded machine);
the printed figures are the measurement.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from authmesh.testing import TcpProxy, wait_for
from support.databases import db_target
from support.harness import Api, claims_of, launch
from support.oidc_flow import Browser, register_browser_clients
from support.redis_server import require_redis

#: A request that waits on Redis at all costs at least a timeout (0.5 s); answers
#: that never wait come in far below this bound, even on a loaded machine.
FAST = 2.0
#: The one request that meets an outage first pays one Redis timeout (0.5 s).
ONE_TIMEOUT = 3.0

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    require_redis()
    with TcpProxy("127.0.0.1", 6379) as proxy:
        yield proxy


@pytest.fixture
def start(tmp_path: Path, redis_proxy: TcpProxy) -> Iterator[Callable[..., Api]]:
    """Start a server whose Redis is behind the proxy, with rate limits on."""
    started: list[Api] = []

    def run(**overrides: Any) -> Api:
        target = stack.enter_context(db_target("sqlite", tmp_path))
        settings = {
            "redis_url": f"redis://127.0.0.1:{redis_proxy.port}/0",
            "rate_limit_per_minute": 100_000,
            **overrides,
        }
        api = launch(target, **settings)
        started.append(api)
        return api

    with contextlib.ExitStack() as stack:
        yield run
        for api in started:
            api.close()
            api.server.stop()


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def _refresh_chain(api: Api, token: str, times: int) -> tuple[str, float]:
    """Refresh ``times`` times in a row; asserts 200 each time; the last token, slowest answer."""
    slowest = 0.0
    for _ in range(times):
        response, took = _timed(lambda t=token: api.refresh(t))
        assert response.status_code == 200, response.text
        token = response.json()["refresh_token"]
        slowest = max(slowest, took)
    return token, slowest


def _service_tokens(api: Api, times: int) -> float:
    slowest = 0.0
    for _ in range(times):
        response, took = _timed(
            lambda: api.token(
                {"grant_type": "client_credentials"}, headers={"Authorization": api.service_basic}
            )
        )
        assert response.status_code == 200, response.text
        slowest = max(slowest, took)
    return slowest


def _block_then_unblock(api: Api, admin_token: str, name: str) -> float:
    """Block and unblock ``name``: both 200, the block on the feed; the slower answer."""
    before = api.latest_cursor()
    headers = api.bearer(admin_token)
    blocked, block_took = _timed(
        lambda: api.http.post(f"/admin/users/{name}/block", headers=headers)
    )
    assert blocked.status_code == 200, blocked.text
    user_id = api.http.get(f"/admin/users/{name}", headers=headers).json()["id"]
    assert ("sub", user_id) in api.events(before)
    unblocked, unblock_took = _timed(
        lambda: api.http.post(f"/admin/users/{name}/unblock", headers=headers)
    )
    assert unblocked.status_code == 200, unblocked.text
    assert unblocked.json()["blocked"] is False
    return max(block_took, unblock_took)


def _health(api: Api) -> dict[str, Any]:
    response = api.http.get("/healthz")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_redis_down_at_start(
    start: Callable[..., Api], redis_proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    redis_proxy.kill()
    caplog.set_level(logging.WARNING, logger="authmesh.server.login_limits.failover")
    api = start()
    name, password = api.new_user()

    login, login_took = _timed(lambda: api.password_grant(name, password))
    assert login.status_code == 200, login.text  # per-process limits stand in
    _, refresh_took = _refresh_chain(api, login.json()["refresh_token"], 5)
    service_took = _service_tokens(api, 5)
    admin = api.admin_token()
    block_took = _block_then_unblock(api, admin, name)
    health = _health(api)

    assert refresh_took < FAST and service_took < FAST
    assert login_took < ONE_TIMEOUT and block_took < ONE_TIMEOUT
    assert (health["status"], health["redis"]) == ("degraded", "down")
    # One warning for the outage, not one per request.
    outage = [r for r in caplog.records if "per-process limits" in r.getMessage()]
    assert len(outage) == 1, [r.getMessage() for r in caplog.records]
    print(
        f"\nredis down at start: login {login_took * 1000:.0f} ms, refresh ≤ "
        f"{refresh_took * 1000:.0f} ms, client_credentials ≤ {service_took * 1000:.0f} ms, "
        f"block/unblock ≤ {block_took * 1000:.0f} ms"
    )

    redis_proxy.restore()
    wait_for(lambda: _health(api)["redis"] == "up", timeout=5)
    assert _health(api)["status"] == "ok"
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_sign_in_limits_hold_per_process_while_redis_is_down(
    start: Callable[..., Api], redis_proxy: TcpProxy
) -> None:
    api = start(login_max_failures=1, login_lock_after=50)
    name, password = api.new_user()
    redis_proxy.kill()

    failures = [api.password_grant(name, "wrong-password-1").status_code for _ in range(2)]
    refused = api.password_grant(name, password)

    assert failures == [400, 400]
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "slow_down"
    assert int(refused.headers["retry-after"]) >= 1


def test_a_hung_redis_costs_at_most_one_short_timeout(
    start: Callable[..., Api], redis_proxy: TcpProxy
) -> None:
    api = start()
    name, password = api.new_user()
    token = api.login(name, password)["refresh_token"]
    admin = api.admin_token()
    redis_proxy.freeze()

    _, refresh_took = _refresh_chain(api, token, 5)
    service_took = _service_tokens(api, 5)
    logins = [_timed(lambda: api.password_grant(name, password)) for _ in range(3)]
    before = api.latest_cursor()
    access = logins[0][0].json()["access_token"]
    logout, logout_took = _timed(
        lambda: api.http.post("/account/logout", headers=api.bearer(access))
    )
    block_took = _block_then_unblock(api, admin, name)
    health, health_took = _timed(lambda: api.http.get("/healthz"))

    assert refresh_took < FAST and service_took < FAST
    assert [r.status_code for r, _ in logins] == [200, 200, 200]
    assert logout.status_code == 204 and logout_took < ONE_TIMEOUT
    assert ("sid", claims_of(access)["sid"]) in api.events(before)
    # The first sign-in meets the outage; the next ones don't wait for Redis again.
    assert logins[0][1] < ONE_TIMEOUT and max(t for _, t in logins[1:]) < FAST
    assert block_took < ONE_TIMEOUT and health_took < ONE_TIMEOUT
    assert health.json()["redis"] == "down"
    print(
        f"\nredis hung: refresh ≤ {refresh_took * 1000:.0f} ms, client_credentials ≤ "
        f"{service_took * 1000:.0f} ms, first login {logins[0][1] * 1000:.0f} ms, next ≤ "
        f"{max(t for _, t in logins[1:]) * 1000:.0f} ms, logout {logout_took * 1000:.0f} ms, "
        f"block/unblock ≤ "
        f"{block_took * 1000:.0f} ms, /healthz {health_took * 1000:.0f} ms"
    )

    redis_proxy.restore()
    wait_for(lambda: _health(api)["redis"] == "up", timeout=5)
    again = api.login(name, password)  # the block ended the sessions; the unblock lets in
    assert api.refresh(again["refresh_token"]).status_code == 200


def test_refuse_policy_pauses_sign_ins_only(
    start: Callable[..., Api], redis_proxy: TcpProxy
) -> None:
    api = start(sign_in_limits_on_redis_outage="refuse")
    register_browser_clients(api)
    name, password = api.new_user()
    token = api.login(name, password)["refresh_token"]
    admin = api.admin_token()
    browser = Browser(api)
    page = browser.authorize()
    redis_proxy.kill()

    refused, refused_took = _timed(lambda: api.password_grant(name, password))
    signed_in = browser.submit_login(page, name, password)
    _, refresh_took = _refresh_chain(api, token, 3)
    service_took = _service_tokens(api, 3)
    block_took = _block_then_unblock(api, admin, name)

    assert refused.status_code == 503, refused.text
    assert refused.json()["error"] == "temporarily_unavailable"
    assert 1 <= int(refused.headers["retry-after"]) <= 5
    assert signed_in.status_code == 503
    assert "text/html" in signed_in.headers["content-type"]
    assert "Try again" in signed_in.text and "Traceback" not in signed_in.text
    assert int(signed_in.headers["retry-after"]) >= 1
    assert refused_took < ONE_TIMEOUT and block_took < ONE_TIMEOUT
    assert refresh_took < FAST and service_took < FAST
    # Unlocking is a write to Redis: it says so rather than pretend.
    unlock = api.http.post(f"/admin/users/{name}/unlock", headers=api.bearer(admin))
    assert unlock.status_code == 503
    assert "retry-after" in unlock.headers
    browser.close()

    redis_proxy.restore()
    wait_for(lambda: _health(api)["redis"] == "up", timeout=5)  # a probe ends the pause
    assert api.password_grant(name, password).status_code == 200
