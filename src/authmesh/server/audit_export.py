"""The audit trail as files: CSV (one column per field, details as JSON) or JSON lines."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from authmesh.server.audit import AuditEntry

__all__ = ["FORMATS", "export"]

#: Format name -> (media type, file extension).
FORMATS = {"csv": ("text/csv; charset=utf-8", "csv"), "jsonl": ("application/jsonl", "jsonl")}
_COLUMNS = ("id", "at", "action", "outcome", "actor", "subject", "client_id", "client_ip")
# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def export(entries: Sequence[AuditEntry], fmt: str) -> str:
    """The entries in ``fmt`` (a key of :data:`FORMATS`)."""
    if fmt == "jsonl":
        return "".join(json.dumps(e.to_json(), sort_keys=True) + "\n" for e in entries)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*_COLUMNS, "details"])
    for entry in entries:
        row = entry.to_json()
        writer.writerow(
            [_cell(row[c]) for c in _COLUMNS] + [_cell(json.dumps(row["details"], sort_keys=True))]
        )
    return out.getvalue()
