"""Fixtures of the service SDK tests: a fake issuer on a port, an in-memory one, clocks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from authmesh.service import ServiceAuth
from authmesh.testing import FakeClock, FakeIssuer
from support.sdk import MockIssuer, mock_config

#: The fixed start of the ``clock`` fixture, far from the real time on purpose.
CLOCK_START = 1_800_000_000.0


@pytest.fixture
def mock_issuer() -> MockIssuer:
    return MockIssuer()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(CLOCK_START)


@pytest.fixture
def mock_auth(mock_issuer: MockIssuer) -> Iterator[ServiceAuth]:
    """A ServiceAuth on the in-memory issuer with keys loaded and a fresh (unstarted) feed."""
    auth = ServiceAuth(
        mock_config(), transport=mock_issuer.transport, async_transport=mock_issuer.transport
    )
    assert auth.keys.refresh(force=True)
    assert auth.revocations is not None
    auth.revocations.mark_heard()
    yield auth
    auth.stop()


@pytest.fixture
def issuer(authmesh_issuer: FakeIssuer) -> FakeIssuer:
    """The fake issuer serving on a free loopback port (the kit's ``authmesh_issuer``)."""
    return authmesh_issuer


@pytest.fixture
def client_secret(issuer: FakeIssuer) -> str:
    """The secret of the service client ``orders`` registered at the fake issuer."""
    return issuer.state.register_client(
        "orders", scopes={"catalog:read"}, audiences=["orders", "catalog"]
    )
