"""Log lines of ``authmesh serve``: timestamped text, or one JSON object per line.

:func:`logging_config` builds the ``logging.config.dictConfig`` dictionary that
uvicorn applies at start (``uvicorn.Config(log_config=...)``), so the server's
own loggers and uvicorn's error and access loggers share one format.

Every line carries its time in ISO 8601 UTC with milliseconds. A JSON line has
``time``, ``level``, ``logger`` and ``message``, ``trace_id`` and ``span_id``
inside a traced request (``--otel``), then the record's extra fields
(``log.info("...", extra={"client_id": ...})``); uvicorn's access lines also
get ``client``, ``method``, ``path``, ``http_version`` and ``status``. An
exception is written as its formatted traceback, which holds no local values.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["JsonFormatter", "LogFormat", "TextFormatter", "iso_utc", "logging_config"]

LogFormat = Literal["text", "json"]

#: Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
}
#: The arguments of uvicorn's access line: '%s - "%s %s HTTP/%s" %d'.
_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")
_ACCESS_LOGGER = "uvicorn.access"


def iso_utc(created: float) -> str:
    """``2026-11-30T13:10:00.123Z`` for a record's ``created`` time."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class TextFormatter(logging.Formatter):
    """``TIME LEVEL logger: message``, with the time in ISO 8601 UTC."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The record's time in ISO 8601 UTC."""
        return iso_utc(record.created)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single line of JSON."""
        line: dict[str, Any] = {
            "time": iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.name == _ACCESS_LOGGER and isinstance(record.args, tuple):
            if len(record.args) == len(_ACCESS_FIELDS):
                line.update(zip(_ACCESS_FIELDS, record.args, strict=True))
        line.update(_trace_ids())
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in line:
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["exc_type"] = record.exc_info[0].__name__
            # Frames and source lines only: traceback formatting never shows locals.
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


def _trace_ids() -> dict[str, str]:
    """The current OpenTelemetry span's ids, to find a line's trace (``--otel``).

    Read only if OpenTelemetry is already loaded: logging never imports it.
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def logging_config(fmt: LogFormat = "text", level: str = "info") -> dict[str, Any]:
    """A ``dictConfig`` for the server and uvicorn loggers, all writing to stderr.

    Args:
        fmt: ``text`` (timestamped lines) or ``json`` (one object per line).
        level: the level of the server's and uvicorn's loggers (``info``, ``warning``...).
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be text or json, not {fmt!r}")
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    level_name = level.upper()
    handler = ["authmesh"]
    return {
        "version": 1,
        # The database loggers were set to WARNING on purpose (quiet_data_loggers).
        "disable_existing_loggers": False,
        "formatters": {"authmesh": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "authmesh": {
                "class": "logging.StreamHandler",
                "formatter": "authmesh",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "authmesh": {"handlers": handler, "level": level_name, "propagate": False},
            "uvicorn": {"handlers": handler, "level": level_name, "propagate": False},
            "uvicorn.error": {"level": level_name},
            "uvicorn.access": {"handlers": handler, "level": level_name, "propagate": False},
        },
        # Other libraries' warnings (SQLAlchemy, httpx...) in the same format.
        "root": {"handlers": handler, "level": "WARNING"},
    }
