"""The pytest plugin of :mod:`authmesh.testing` (entry point ``pytest11``).

Its fixtures start nothing unless a test asks for them:

* ``authmesh_issuer``: a running :class:`~authmesh.testing.FakeIssuer`, stopped after the test.
* ``fake_clock``: a :class:`~authmesh.testing.FakeClock` at the real time now.
* ``authmesh_server``: the real auth server (needs the ``server`` extra) on SQLite
  in the test's temporary folder, seeded by :func:`~authmesh.testing.authserver.seed_demo`.

The kit is imported inside the fixtures: the plugin loads in every pytest run
where authmesh is installed, with or without the ``testing`` extra.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from authmesh.testing.authserver import AuthServerThread
    from authmesh.testing.clock import FakeClock
    from authmesh.testing.issuer import FakeIssuer

__all__ = ["authmesh_issuer", "authmesh_server", "fake_clock"]


@pytest.fixture
def authmesh_issuer() -> Iterator[FakeIssuer]:
    """A fake auth server on a free loopback port: mint tokens, publish revocations."""
    from authmesh.testing.issuer import FakeIssuer

    with FakeIssuer() as issuer:
        yield issuer


@pytest.fixture
def fake_clock() -> FakeClock:
    """A clock that moves only by ``advance()``; pass it as ``clock=``."""
    from authmesh.testing.clock import FakeClock

    return FakeClock()


@pytest.fixture
def authmesh_server(tmp_path: Path) -> Iterator[AuthServerThread]:
    """The real auth server on SQLite, seeded with ``admin``, ``alice``, ``web`` and
    ``orders-svc``; the service client's secret is ``authmesh_server.seeded["service_secret"]``."""
    from authmesh.testing.authserver import AuthServerThread, seed_demo, settings_for
    from authmesh.testing.databases import database

    with database("sqlite", tmp_path) as target:
        server = AuthServerThread(settings_for(target)).start()
        try:
            server.seeded = seed_demo(server)
            yield server
        finally:
            server.stop()
