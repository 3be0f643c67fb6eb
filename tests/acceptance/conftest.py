"""Fixtures of the acceptance tests: one auth server and three services for the package.

Tests on the shared stack act on users of their own, so blocking or logging out
one test's user leaves the others alone; modules that stop servers, rotate keys
or count requests start stacks of their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.acceptance import Stack, run_services, service_config, start_issuer
from support.databases import db_target


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The shared stack on SQLite; the feed's heartbeat is the default 2 s, so a
    sub-second revocation proves the stream is woken, not polled."""
    with db_target("sqlite", tmp_path_factory.mktemp("stack")) as target:
        issuer = start_issuer(target, feed_heartbeat=2.0)
        try:
            config = service_config(issuer.url, issuer.api.service_secret)
            with run_services(config) as services:
                yield Stack(issuer, services)
        finally:
            issuer.stop()
