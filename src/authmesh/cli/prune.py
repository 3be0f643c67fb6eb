"""``authmesh db prune``: what the server's retention job does, once, on demand."""

from __future__ import annotations

import typer

from authmesh.cli.server_context import (
    ConfigOpt,
    DatabaseOpt,
    DataDirOpt,
    run_with_context,
    settings_from,
)

__all__ = ["prune"]

#: How each kind of row reads in the report.
_LABELS = {
    "refresh_tokens": "refresh tokens",
    "sessions": "sessions",
    "authorization_codes": "authorization codes",
    "revocation_events": "revocation events",
    "audit_events": "audit events",
}


def prune(
    database_url: DatabaseOpt = None, data_dir: DataDirOpt = None, config: ConfigOpt = None
) -> None:
    """Delete expired and used refresh tokens, ended sessions, expired codes, old
    revocation events and audit events past their retention, and say how many."""
    from authmesh.server.retention import prune_now

    settings = settings_from(config, database_url, data_dir)
    counts = run_with_context(settings, prune_now)
    width = max(len(label) for label in _LABELS.values())
    for kind, removed in counts.as_dict().items():
        typer.echo(f"{_LABELS[kind]:<{width}}  {removed:>8} removed")
    retention = "forever" if settings.audit_retention == 0 else f"{settings.audit_retention} s"
    typer.echo(f"audit events are kept {retention} (audit_retention)")
