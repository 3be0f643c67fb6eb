"""Fixtures of the auth-server integration tests: every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from authmesh.testing.databases import DbTarget
from support.databases import db_target
from support.harness import BACKENDS, Api, launch

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


@pytest.fixture
def fresh(start_server: Callable[..., Api]) -> Api:
    """A server of this test's own (for modules whose ``api`` is the shared one)."""
    return start_server()


@pytest.fixture(scope="module", params=_PARAMS)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    """One seeded server per backend for a whole module.

    Tests on it must not disturb each other: they act on their own users
    (:meth:`Api.new_user`) and read the feed after a cursor taken first.
    """
    with db_target(request.param, tmp_path_factory.mktemp(request.param)) as target:
        api = launch(target)
        try:
            yield api
        finally:
            api.close()
            api.server.stop()
