"""TLS: ``authmesh dev-cert`` and ``authmesh serve --tls-cert --tls-key`` as an operator
runs them, and the SDK trusting that server only through its CA bundle.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from authmesh.errors import ConfigError
from authmesh.jose import TokenRejected
from authmesh.server import accounts, clients
from authmesh.server.config import load_settings
from authmesh.server.context import ServerContext
from authmesh.service import ServiceAuth, ServiceConfig
from authmesh.testing import UvicornThread, free_port, wait_for
from authmesh.testing.server_settings import FAST_ARGON2
from support.security_stack import assert_invalid_token, orders_service

EXE = Path(sys.executable).parent / "authmesh"
USER = ("tls-user", "tls-user-password-1")
ADMIN = ("tls-admin", "tls-admin-password-1")


@dataclass
class TlsServer:
    url: str
    ca: Path
    secret: str
    log: Path

    def context(self) -> ssl.SSLContext:
        """Trust exactly the development CA."""
        return ssl.create_default_context(cafile=str(self.ca))


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHMESH_")}
    env["AUTHMESH_DATA_DIR"] = str(data_dir)
    for name, value in FAST_ARGON2.items():
        env[f"AUTHMESH_{name.upper()}"] = str(value)
    return env


def _seed(data_dir: Path) -> str:
    """A user and a confidential service client, written before the server starts."""

    async def seed() -> str:
        ctx = ServerContext.build(load_settings(None, data_dir=data_dir, **FAST_ARGON2))
        try:
            await ctx.start()
            await accounts.create_user(ctx, username=USER[0], password=USER[1], roles=["user"])
            await accounts.create_user(
                ctx, username=ADMIN[0], password=ADMIN[1], roles=["admin", "user"]
            )
            await clients.register_client(
                ctx,
                client_id="web",
                public=True,
                grant_types=["password", "refresh_token"],
                scopes=["orders:read"],
                audiences=["orders"],
            )
            made = await clients.register_client(
                ctx, client_id="orders-svc", grant_types=["client_credentials"]
            )
            assert made.secret is not None
            return made.secret
        finally:
            await ctx.close()

    return asyncio.run(seed())


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    base = tmp_path_factory.mktemp("tls")
    env = _env(base)
    made = subprocess.run(
        [str(EXE), "dev-cert", "--out", str(base / "certs")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    certs = base / "certs"
    secret = _seed(base)
    port = free_port()
    log = base / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                str(EXE),
                "serve",
                "--port",
                str(port),
                "--tls-cert",
                str(certs / "server.pem"),
                "--tls-key",
                str(certs / "server-key.pem"),
                "--log-level",
                "debug",
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                trust = ssl.create_default_context(cafile=str(certs / "ca.pem"))
                if httpx.get(f"{url}/healthz", verify=trust).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "authmesh serve (TLS) did not become healthy"
            time.sleep(0.1)
        yield TlsServer(url, certs / "ca.pem", secret, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _login(
    tls: TlsServer, user: tuple[str, str] = USER, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(
        f"{tls.url}/oauth/token",
        data={
            "grant_type": "password",
            "username": user[0],
            "password": user[1],
            "client_id": "web",
        },
        headers=headers,
        verify=tls.context(),
    )


def test_dev_cert_keys_are_private_files(tls: TlsServer) -> None:
    certs = tls.ca.parent
    for name in ("ca-key.pem", "server-key.pem"):
        assert stat.S_IMODE((certs / name).stat().st_mode) == 0o600, name
    for name in ("ca.pem", "server.pem"):
        assert "PRIVATE KEY" not in (certs / name).read_text()


def test_serves_https_with_hsts_and_no_store(tls: TlsServer) -> None:
    health = httpx.get(f"{tls.url}/healthz", verify=tls.context())
    hsts = health.headers.get("strict-transport-security", "")
    assert hsts.startswith("max-age=") and int(hsts.split("=")[1].split(";")[0]) >= 15552000
    discovery = httpx.get(f"{tls.url}/.well-known/openid-configuration", verify=tls.context())
    assert discovery.json()["issuer"] == tls.url
    assert discovery.json()["jwks_uri"].startswith("https://")
    login = _login(tls)
    assert login.status_code == 200, login.text
    assert login.headers["cache-control"] == "no-store"
    assert login.headers["pragma"] == "no-cache"
    assert "strict-transport-security" in login.headers


def test_an_untrusted_certificate_is_refused(tls: TlsServer) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls.url}/healthz")  # the system's CAs do not know the dev CA


def test_plain_http_on_the_tls_port_gets_nothing(tls: TlsServer) -> None:
    plain = tls.url.replace("https://", "http://")
    try:
        response = httpx.get(f"{plain}/.well-known/jwks.json", timeout=5)
    except httpx.TransportError:
        return
    assert response.status_code != 200


def test_the_sdk_verifies_over_tls_with_the_ca_bundle(tls: TlsServer) -> None:
    token = _login(tls).json()["access_token"]
    auth = ServiceAuth(
        ServiceConfig(
            issuer=tls.url,
            audience="orders",
            client_id="orders-svc",
            client_secret=tls.secret,
            ca_bundle=str(tls.ca),
        )
    )
    service = UvicornThread(orders_service(auth)).start()
    try:
        wait_for(lambda: bool(auth.feed and auth.feed.connected), timeout=10)
        with httpx.Client(base_url=service.url) as http:
            me = http.get("/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
            assert me.json()["sub"]
            assert_invalid_token(http.get("/me", headers={"Authorization": f"Bearer {token}x"}))
    finally:
        service.stop()


def test_the_sdk_without_the_ca_bundle_refuses(tls: TlsServer) -> None:
    token = _login(tls).json()["access_token"]
    auth = ServiceAuth(ServiceConfig(issuer=tls.url, audience="orders", fail_open=True))
    try:
        # The SDK cannot fetch the keys: the token is refused, as a typed rejection.
        with pytest.raises(TokenRejected) as refused:
            auth.verify(token)
        assert refused.value.reason == "verifier_unavailable"
        assert auth.keys.loaded is False
    finally:
        auth.stop()


@pytest.mark.parametrize(
    "issuer",
    [
        "http://auth.example.com",
        "http://10.0.0.5:8000",
        "http://0.0.0.0:8000",
        "http://localhost@evil.example",
        "http://127.0.0.1.nip.io",
        "http://localhost.evil.example",
    ],
)
def test_the_sdk_refuses_a_plain_http_issuer_outside_loopback(issuer: str) -> None:
    with pytest.raises(ConfigError, match="http"):
        ServiceConfig(issuer=issuer, audience="orders", fail_open=True)
    # Allowed only when asked for explicitly.
    ServiceConfig(issuer=issuer, audience="orders", fail_open=True, allow_insecure_http=True)


@pytest.mark.parametrize(
    "issuer", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"]
)
def test_plain_http_to_loopback_is_allowed_for_development(issuer: str) -> None:
    ServiceConfig(issuer=issuer, audience="orders", fail_open=True)


def test_serve_logs_at_debug_level_carry_no_secrets(tls: TlsServer) -> None:
    response = _login(tls)
    assert response.status_code == 200
    refresh = response.json()["refresh_token"]
    httpx.post(
        f"{tls.url}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": "web"},
        verify=tls.context(),
    )
    time.sleep(0.3)
    log = tls.log.read_text()
    assert "POST /oauth/token" in log  # debug logging is really on
    for secret in (USER[1], refresh, tls.secret):
        assert secret not in log


def test_forwarded_headers_do_not_spoof_the_client_address(tls: TlsServer) -> None:
    """``authmesh serve`` trusts no proxy header: limits and audit see the real peer."""
    spoof = {
        "X-Forwarded-For": "203.0.113.9",
        "X-Real-IP": "203.0.113.9",
        "Forwarded": "for=203.0.113.9",
    }
    assert _login(tls, (USER[0], "wrong-password-123"), spoof).status_code == 400
    admin = _login(tls, ADMIN).json()["access_token"]
    events = httpx.get(
        f"{tls.url}/admin/audit",
        params={"action": "login", "outcome": "failure", "subject": USER[0]},
        headers={"Authorization": f"Bearer {admin}"},
        verify=tls.context(),
    ).json()["events"]
    assert events and {e["client_ip"] for e in events} == {"127.0.0.1"}


def test_the_issuer_does_not_follow_the_host_header(tls: TlsServer) -> None:
    discovery = httpx.get(
        f"{tls.url}/.well-known/openid-configuration",
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
        verify=tls.context(),
    ).json()
    assert "evil" not in json.dumps(discovery)
    assert discovery["issuer"] == tls.url
