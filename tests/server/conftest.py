"""Fixtures of the auth-server integration tests: every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from server.harness import BACKENDS, Api, launch
from support.databases import DbTarget, db_target

_PARAMS = [
    pytest.param(b, id=b, marks=[pytest.mark.postgres] if b == "postgres" else []) for b in BACKENDS
]


@pytest.fixture(params=_PARAMS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DbTarget]:
    """A fresh database of each backend."""
    with db_target(request.param, tmp_path) as target:
        yield target


@pytest.fixture
def start_server(db: DbTarget) -> Iterator[Callable[..., Api]]:
    """Start servers on the test's database: ``start_server(seed=True, **settings)``.

    Every server started is stopped after the test, before its database goes.
    """
    started: list[Api] = []

    def start(*, seed: bool = True, clock: Any = None, **overrides: Any) -> Api:
        api = launch(db, seed=seed, clock=clock, **overrides)
        started.append(api)
        return api

    yield start
    for api in reversed(started):
        api.close()
        api.server.stop()


@pytest.fixture
def api(start_server: Callable[..., Api]) -> Api:
    """A running server with the demo users (admin, alice) and clients (web, orders-svc)."""
    return start_server()
