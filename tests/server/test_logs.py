"""Log lines of ``authmesh serve``: timestamped text, or JSON objects with extra fields."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from authmesh.server.logs import JsonFormatter, TextFormatter, iso_utc, logging_config
from authmesh.testing import wait_for
from authmesh.testing.net import free_port
from authmesh.testing.server_settings import FAST_ARGON2, server_env

#: 2026-11-30T13:10:00.123Z
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _record(
    name: str = "authmesh.test", msg: str = "hello %s", args: object = ("world",)
) -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)  # type: ignore[arg-type]


def _parse_time(value: str) -> datetime:
    assert ISO_UTC.match(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_iso_utc_is_utc_with_milliseconds() -> None:
    assert iso_utc(0.5) == "1970-01-01T00:00:00.500Z"
    assert iso_utc(1_800_000_000.0429) == "2027-01-15T08:00:00.042Z"


def test_json_line_has_time_level_logger_message_and_extra_fields() -> None:
    record = _record()
    record.client_id = "orders-svc"
    record.attempt = 3
    line = json.loads(JsonFormatter().format(record))
    assert abs(_parse_time(line["time"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert line["level"] == "WARNING"
    assert line["logger"] == "authmesh.test"
    assert line["message"] == "hello world"
    assert line["client_id"] == "orders-svc"
    assert line["attempt"] == 3
    # Nothing of the LogRecord's own bookkeeping leaks into the line.
    assert not {"args", "msg", "pathname", "lineno", "created", "exc_info"} & set(line)


def test_json_line_inside_a_span_names_its_trace() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        line = json.loads(JsonFormatter().format(_record()))
    context = span.get_span_context()
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"
    assert "trace_id" not in json.loads(JsonFormatter().format(_record()))


def test_json_line_of_an_exception_has_its_traceback_but_no_locals() -> None:
    secret = "hunter2-local-value"
    try:
        raise ValueError("the message")
    except ValueError:
        record = _record(msg="failed", args=())
        record.exc_info = sys.exc_info()
    assert secret  # a local of the raising frame
    line = json.loads(JsonFormatter().format(record))
    assert line["exc_type"] == "ValueError"
    assert "Traceback" in line["exc"] and "ValueError: the message" in line["exc"]
    assert secret not in line["exc"]


def test_json_access_line_names_client_method_path_and_status() -> None:
    args = ("127.0.0.1:5000", "GET", "/healthz", "1.1", 200)
    record = _record("uvicorn.access", '%s - "%s %s HTTP/%s" %d', args)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == '127.0.0.1:5000 - "GET /healthz HTTP/1.1" 200'
    assert (line["method"], line["path"], line["status"]) == ("GET", "/healthz", 200)
    assert line["client"] == "127.0.0.1:5000"


def test_text_line_starts_with_an_iso_utc_time() -> None:
    text = TextFormatter().format(_record())
    stamp, level, rest = text.split(maxsplit=2)
    _parse_time(stamp)
    assert level == "WARNING"
    assert rest == "authmesh.test: hello world"


def test_config_routes_server_and_uvicorn_loggers_through_one_formatter() -> None:
    config = logging_config("json", "warning")
    assert config["formatters"]["authmesh"]["()"].endswith("JsonFormatter")
    for name in ("authmesh", "uvicorn", "uvicorn.access"):
        assert config["loggers"][name]["handlers"] == ["authmesh"]
        assert config["loggers"][name]["level"] == "WARNING"
    assert config["disable_existing_loggers"] is False
    assert logging_config()["formatters"]["authmesh"]["()"].endswith("TextFormatter")
    with pytest.raises(ValueError, match="text or json"):
        logging_config("yaml")  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_serve_writes_timestamped_lines(how: str, tmp_path: Path) -> None:
    """``authmesh serve``: JSON with ``--log-format json``, text with the default format.

    The environment variable sets the format too (``AUTHMESH_LOG_FORMAT``).
    """
    port = free_port()
    fmt = "json" if how == "flag" else "text"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AUTHMESH_")},
        **server_env(port=port, data_dir=tmp_path / "data", **FAST_ARGON2),
    }
    args = [str(Path(sys.executable).parent / "authmesh"), "serve", "--log-level", "info"]
    if how == "flag":
        args += ["--log-format", "json"]
    else:
        env["AUTHMESH_LOG_FORMAT"] = "text"
    log_file = tmp_path / "stderr.log"
    with log_file.open("wb") as stderr:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:

        def answers() -> bool:
            assert proc.poll() is None, log_file.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, timeout=60, interval=0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    lines = [line for line in log_file.read_text().splitlines() if line.strip()]
    assert lines
    if fmt == "json":
        records = [json.loads(line) for line in lines]
        for record in records:
            _parse_time(record["time"])
            assert {"level", "logger", "message"} <= set(record)
        access = [r for r in records if r["logger"] == "uvicorn.access"]
        assert any(r["path"] == "/healthz" and r["status"] == 200 for r in access), access
        assert any(r["logger"] == "uvicorn.error" for r in records)
    else:
        for line in lines:
            _parse_time(line.split()[0])
        assert any("uvicorn.access:" in line and "/healthz" in line for line in lines), lines
