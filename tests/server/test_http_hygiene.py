"""HTTP hygiene of the auth server as it is served: slow-header and slow-body clients
are answered 408 and dropped while others are served, bodies and headers are
bounded (413, 431), and a client hanging up mid-request or mid-stream leaves no
error in the log.

The server runs with each of uvicorn's HTTP implementations (httptools, h11)
and short read timeouts (1 s); the bounds asserted are generous.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from authmesh.server.slow_clients import protocol_class
from authmesh.testing import wait_for
from authmesh.testing.authserver import AuthServerThread, seed_demo, settings_for
from support.databases import db_target
from support.harness import ALICE, Api

TIMEOUT = 1.0
#: Time allowed past a timeout before the connection must be closed (a loaded machine).
SLACK = 3.0


@pytest.fixture(scope="module", params=[HttpToolsProtocol, H11Protocol], ids=["httptools", "h11"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with db_target("sqlite", tmp_path_factory.mktemp("hygiene")) as target:
        settings = settings_for(
            target,
            http_header_timeout=TIMEOUT,
            http_body_timeout=TIMEOUT,
            feed_heartbeat=0.2,
        )
        http = protocol_class(
            header_timeout=TIMEOUT,
            body_timeout=TIMEOUT,
            max_header_bytes=settings.http_max_header_bytes,
            base=request.param,
        )
        server = AuthServerThread(settings, uvicorn_options={"http": http}).start()
        try:
            api = Api(server, seed_demo(server)["service_secret"])
            yield api
            api.close()
        finally:
            server.stop()


def _connect(api: Api) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", api.server.settings.port), timeout=5)
    sock.settimeout(0.2)
    return sock


def _trickle_until_closed(sock: socket.socket, start: bytes, drip: bytes, limit: float) -> bytes:
    """Send ``start``, then one byte of ``drip`` every ~0.2 s until the server closes.

    Returns what the server sent; fails if it is still open after ``limit`` seconds.
    """
    sock.sendall(start)
    received = b""
    began = time.monotonic()
    position = 0
    while time.monotonic() - began < limit:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            with _ignore_reset():
                sock.sendall(drip[position % len(drip) : position % len(drip) + 1])
            position += 1
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the server kept a slow client for {limit} s")


class _ignore_reset:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        return isinstance(exc, BrokenPipeError | ConnectionResetError)


def _served_quickly(api: Api) -> float:
    started = time.monotonic()
    response = api.password_grant(*ALICE)
    assert response.status_code == 200, response.text
    return time.monotonic() - started


def test_slow_header_clients_get_408_and_are_dropped_while_others_are_served(api: Api) -> None:
    slow = [_connect(api) for _ in range(10)]
    try:
        for sock in slow[1:]:
            sock.sendall(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        started = time.monotonic()
        assert _served_quickly(api) < SLACK
        answer = _trickle_until_closed(
            slow[0],
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nX-Slow: ",
            b"abcdef",
            TIMEOUT + SLACK,
        )
        took = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"connection: close" in answer.lower()
        assert TIMEOUT - 0.2 < took < TIMEOUT + SLACK
        for sock in slow[1:]:  # the silent ones went the same way
            assert _read_until_closed(sock).startswith(b"HTTP/1.1 408 ")
        assert _served_quickly(api) < SLACK
    finally:
        for sock in slow:
            sock.close()


def test_a_connection_that_never_speaks_is_closed(api: Api) -> None:
    with _connect(api) as sock:
        started = time.monotonic()
        assert _read_until_closed(sock).startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < TIMEOUT + SLACK


def test_a_slow_body_client_gets_408_and_is_dropped_while_others_are_served(api: Api) -> None:
    head = (
        b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n"
    )
    with _connect(api) as sock:
        started = time.monotonic()
        sock.sendall(head + b"grant_type=")
        assert _served_quickly(api) < SLACK
        answer = _trickle_until_closed(sock, b"", b"password", TIMEOUT + SLACK)
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert TIMEOUT - 0.2 < took < TIMEOUT + SLACK
    assert _served_quickly(api) < SLACK


def test_keep_alive_requests_and_long_streams_are_not_cut(api: Api) -> None:
    # One connection, requests spaced out past the read timeouts: each is read promptly.
    with httpx.Client(base_url=api.url, timeout=5) as client:
        for _ in range(2):
            assert client.get("/healthz").status_code == 200
        # A feed stream outlives every read timeout: its request was read at once.
        headers = {"Authorization": api.service_basic, "Accept": "text/event-stream"}
        with client.stream("GET", "/revocations/stream", headers=headers) as response:
            assert response.status_code == 200
            opened = time.monotonic()
            for line in response.iter_lines():
                if line.startswith("event: heartbeat") and time.monotonic() - opened > 2 * TIMEOUT:
                    break
        assert client.get("/healthz").status_code == 200


def test_an_oversized_body_is_413_without_being_read(api: Api) -> None:
    with _connect(api) as sock:
        sock.settimeout(5)
        started = time.monotonic()
        sock.sendall(
            b"POST /admin/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000\r\n\r\n{"
        )
        answer = _read_until_closed(sock)
        assert time.monotonic() - started < SLACK
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert b'"error":"invalid_request"' in answer.replace(b" ", b"")


def test_a_chunked_json_body_past_the_limit_is_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"username": "'
        for _ in range(40):
            yield b"a" * 4096  # 160 KiB, no Content-Length

    response = api.http.post(
        "/admin/users",
        content=chunks(),
        headers={"Content-Type": "application/json", **api.bearer(api.admin_token())},
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "invalid_request"
    assert "65536 bytes" in response.json()["error_description"]
    assert _served_quickly(api) < SLACK


def test_a_body_under_the_limit_still_reaches_the_route(api: Api) -> None:
    # 20 KB: over the OAuth form's own bound (RFC 6749 §5.2 answer), under the HTTP one.
    response = api.token({"grant_type": "password", "username": "a" * 20_000})
    assert response.status_code == 400
    assert response.json()["error_description"] == "the request body is too large"


def test_oversized_headers_are_431(api: Api) -> None:
    with _connect(api) as sock:
        sock.settimeout(5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        filler = b"X-Filler: " + b"f" * 8000 + b"\r\n"
        with _ignore_reset():
            for _ in range(12):  # ~96 KiB of headers, never finished
                sock.sendall(filler)
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer


def test_clients_hanging_up_leave_no_error_in_the_log(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    requests = [
        b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant",
        b"POST /login HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ncsrf",
        b"POST /admin/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + api.admin_token().encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        b"GET /revocations/stream HTTP/1.1\r\nHost: x\r\nAuthorization: "
        + api.service_basic.encode()
        + b"\r\n\r\n",
    ]
    registry = api.server.core.hub.followers
    for raw in requests:
        with _connect(api) as sock:
            sock.sendall(raw)
            if raw.startswith(b"GET /revocations"):
                sock.settimeout(5)
                assert sock.recv(100).startswith(b"HTTP/1.1 200 ")  # mid-stream, then gone
    # Every hang-up noticed: the stream left the registry, no request is still running.
    wait_for(lambda: registry.count() == 0, timeout=5)
    wait_for(lambda: not api.server.running_requests(), timeout=5)
    assert _served_quickly(api) < SLACK
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info is not None]
    assert problems == [], [r.getMessage() for r in problems]


def _read_until_closed(sock: socket.socket, limit: float = TIMEOUT + SLACK) -> bytes:
    received = b""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the server did not close the connection within {limit} s")
