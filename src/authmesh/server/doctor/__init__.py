"""``authmesh doctor``'s checks: is this server set up to run safely?

Each check gives :class:`~authmesh.server.doctor.findings.Finding`\\ s (OK, WARN or
FAIL): key encryption, file modes, TLS, the issuer URL, the database, Redis and
the clock. They only read: nothing is created, migrated or changed.
"""

from __future__ import annotations

import time

from authmesh.jose.policy import Clock
from authmesh.server.config import ServerSettings
from authmesh.server.doctor.backends import check_clock, check_redis, open_database
from authmesh.server.doctor.files import check_file_modes
from authmesh.server.doctor.findings import Finding, Status, warn
from authmesh.server.doctor.keys import KEYS, check_keys
from authmesh.server.doctor.setup import check_issuer, check_tls

__all__ = ["Finding", "Status", "diagnose"]


async def diagnose(settings: ServerSettings, *, clock: Clock = time.time) -> list[Finding]:
    """Every finding, in the order of the report."""
    reached = await open_database(settings)
    db = reached.db
    clock_finding = None
    try:
        if db is None:
            keys = warn(KEYS, "not checked: there is no database to read the keys from")
        elif reached.revision is None:
            keys = warn(KEYS, "not checked: the database has no tables yet")
        else:
            keys = await check_keys(settings, db)
        if db is not None:
            clock_finding = await check_clock(db, settings, clock)
    finally:
        if db is not None:
            await db.dispose()
    findings = [keys, *check_file_modes(settings), check_tls(settings), check_issuer(settings)]
    findings += [reached.finding, await check_redis(settings)]
    if clock_finding is not None:
        findings.append(clock_finding)
    return findings
