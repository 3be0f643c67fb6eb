"""Test kit for services protected by authmesh, and a pytest plugin.

Install ``authmesh[testing]``; pytest then offers the fixtures of
:mod:`authmesh.testing.plugin` (``authmesh_issuer``, ``fake_clock``, …).

* :class:`FakeIssuer`: an in-process auth server on a loopback port that
  publishes discovery and JWKS, mints access tokens with any claims, and serves
  the revocation feed, on which a test publishes any event.
* :class:`TcpProxy`: a TCP proxy to kill or freeze, for outages of a database
  or Redis under test.
* :class:`FakeClock`, :func:`free_port`, :func:`wait_for` /
  :func:`async_wait_for`, :class:`UvicornThread` / :class:`WerkzeugThread`.
* :mod:`authmesh.testing.authserver` (needs the ``server`` extra): the real
  auth server in a thread or a process, on SQLite or PostgreSQL
  (:mod:`authmesh.testing.databases`).

Names are imported on first use, so that loading the pytest plugin costs
nothing and needs neither uvicorn nor the server's dependencies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from authmesh.testing.clock import FakeClock
    from authmesh.testing.issuer import FakeIssuer, bearer
    from authmesh.testing.issuer_state import IssuerState
    from authmesh.testing.net import free_port
    from authmesh.testing.proxy import TcpProxy
    from authmesh.testing.servers import UvicornThread, WerkzeugThread
    from authmesh.testing.waiting import async_wait_for, wait_for

__all__ = [
    "FakeClock",
    "FakeIssuer",
    "IssuerState",
    "TcpProxy",
    "UvicornThread",
    "WerkzeugThread",
    "async_wait_for",
    "bearer",
    "free_port",
    "wait_for",
]

_HOMES = {
    "FakeClock": "clock",
    "FakeIssuer": "issuer",
    "IssuerState": "issuer_state",
    "TcpProxy": "proxy",
    "UvicornThread": "servers",
    "WerkzeugThread": "servers",
    "async_wait_for": "waiting",
    "bearer": "issuer",
    "free_port": "net",
    "wait_for": "waiting",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
