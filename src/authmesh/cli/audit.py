"""``authmesh audit``: query the audit trail of security events."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from authmesh.cli.formatting import utc_time
from authmesh.cli.server_context import (
    ConfigOpt,
    DatabaseOpt,
    DataDirOpt,
    run_with_context,
    settings_from,
)
from authmesh.server import audit as audit_trail
from authmesh.server.context import ServerContext

__all__ = ["audit"]


def audit(
    action: Annotated[str | None, typer.Option(help="e.g. login, block, password_change")] = None,
    subject: Annotated[str | None, typer.Option(help="The username or client concerned")] = None,
    actor: Annotated[str | None, typer.Option(help="Who did it")] = None,
    outcome: Annotated[str | None, typer.Option(help="success, failure, revoked…")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
    database_url: DatabaseOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show security events, newest first."""

    async def action_(ctx: ServerContext) -> list[audit_trail.AuditEntry]:
        what = audit_trail.AuditQuery(
            action=action, subject=subject, actor=actor, outcome=outcome, limit=limit
        )
        return await audit_trail.query(ctx, what)

    rows = run_with_context(settings_from(config, database_url, data_dir), action_)
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r.to_json()))
        return
    table = Table("time (UTC)", "action", "outcome", "actor", "subject", "client", "address")
    for r in rows:
        table.add_row(
            utc_time(r.at),
            r.action,
            r.outcome,
            r.actor or "-",
            r.subject or "-",
            r.client_id or "-",
            r.client_ip or "-",
        )
    Console().print(table)
