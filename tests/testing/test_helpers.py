"""FakeClock, free_port, wait_for and the kit's lazy public surface."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

import authmesh.testing
from authmesh.testing import FakeClock, async_wait_for, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(1000.0)
    assert clock() == 1000.0
    assert clock.advance(2.5) == 1002.5
    assert clock() == 1002.5
    clock.set(10.0)
    assert clock() == 10.0 and clock.now == 10.0
    assert repr(clock) == "FakeClock(10.0)"


def test_fake_clock_starts_at_the_real_time_by_default(fake_clock: FakeClock) -> None:
    assert abs(fake_clock() - time.time()) < 5
    before = fake_clock()
    time.sleep(0.01)
    assert fake_clock() == before


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_wait_for_returns_the_time_it_took() -> None:
    deadline = time.monotonic() + 0.05
    took = wait_for(lambda: time.monotonic() >= deadline, timeout=2)
    assert 0.04 <= took < 1.5


def test_wait_for_times_out_with_a_clear_message() -> None:
    def feed_connected() -> bool:
        return False

    with pytest.raises(AssertionError, match=r"^feed_connected not met within 0\.05 s$"):
        wait_for(feed_connected, timeout=0.05)
    with pytest.raises(AssertionError, match=r"^condition not met within 0\.05 s$"):
        wait_for(lambda: False, timeout=0.05)
    with pytest.raises(AssertionError, match=r"^the token refused not met within 0\.05 s$"):
        wait_for(lambda: False, timeout=0.05, message="the token refused")


async def test_async_wait_for_awaits_the_predicate() -> None:
    calls: list[int] = []

    async def third_time() -> bool:
        calls.append(1)
        await asyncio.sleep(0)
        return len(calls) >= 3

    assert await async_wait_for(third_time, timeout=2) < 1.5
    assert len(calls) == 3
    assert await async_wait_for(lambda: True) < 0.5
    with pytest.raises(AssertionError, match=r"^condition not met within 0\.05 s$"):
        await async_wait_for(lambda: False, timeout=0.05)


def test_the_public_names_are_exactly_all() -> None:
    exported = set(authmesh.testing.__all__)
    assert sorted(authmesh.testing.__all__) == authmesh.testing.__all__
    assert all(getattr(authmesh.testing, name) is not None for name in exported)
    assert exported <= set(dir(authmesh.testing))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = authmesh.testing.nothing


def test_the_plugin_loads_nothing_heavy() -> None:
    """The plugin loads in every pytest run: no uvicorn, server or framework until asked."""
    code = (
        "import sys, authmesh.testing.plugin; "
        "print(sorted(m for m in ('uvicorn', 'starlette', 'authmesh.server', 'sqlalchemy') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_the_plugin_is_registered_as_a_pytest_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    plugins = project["entry-points"]["pytest11"]
    assert plugins == {"authmesh.testing.plugin": "authmesh.testing.plugin"}
    assert "pytest" in " ".join(project["optional-dependencies"]["testing"])
    assert any("testing" in dep for dep in project["optional-dependencies"]["test"])
