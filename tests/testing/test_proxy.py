"""The test kit's TCP proxy: forwards, kills and freezes a real PostgreSQL and Redis connection."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from authmesh.testing.proxy import TcpProxy


def _redis_ping(port: int, timeout: float = 2.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", 6379) as proxy:
        yield proxy


def test_forwards_both_ways(redis_proxy: TcpProxy) -> None:
    assert _redis_ping(redis_proxy.port) == b"+PONG\r\n"
    assert redis_proxy.state == "up"


def test_kill_refuses_new_connections_and_resets_open_ones(redis_proxy: TcpProxy) -> None:
    sock = socket.create_connection(redis_proxy.address, timeout=2)
    sock.sendall(b"PING\r\n")
    assert sock.recv(64) == b"+PONG\r\n"
    redis_proxy.kill()
    with pytest.raises(OSError):
        sock.sendall(b"PING\r\n")
        if not sock.recv(64):
            raise ConnectionResetError("closed")
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        _redis_ping(redis_proxy.port)
    redis_proxy.restore()
    assert _redis_ping(redis_proxy.port) == b"+PONG\r\n"


def test_freeze_moves_no_byte_until_restored(redis_proxy: TcpProxy) -> None:
    sock = socket.create_connection(redis_proxy.address, timeout=2)
    redis_proxy.freeze()
    sock.settimeout(0.3)
    sock.sendall(b"PING\r\n")
    with pytest.raises(TimeoutError):
        sock.recv(64)
    # A new connection is accepted but silent too, as behind a partition.
    with pytest.raises(TimeoutError):
        _redis_ping(redis_proxy.port, timeout=0.3)
    redis_proxy.restore()
    sock.settimeout(2)
    assert sock.recv(64) == b"+PONG\r\n"
    sock.close()


def test_postgres_through_the_proxy() -> None:
    import asyncpg

    async def scenario(proxy: TcpProxy) -> None:
        dsn = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"
        conn = await asyncpg.connect(dsn, timeout=2)
        assert await conn.fetchval("select 1") == 1
        proxy.kill()
        started = time.monotonic()
        with pytest.raises((OSError, asyncpg.PostgresConnectionError)):
            await conn.fetchval("select 1", timeout=2)
        assert time.monotonic() - started < 2
        with pytest.raises(OSError):
            await asyncpg.connect(dsn, timeout=2)
        proxy.restore()
        conn = await asyncpg.connect(dsn, timeout=2)
        assert await conn.fetchval("select 1") == 1
        await conn.close()

    with TcpProxy("127.0.0.1", 5432) as proxy:
        asyncio.run(scenario(proxy))
