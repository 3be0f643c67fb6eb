"""The text/event-stream parser (WHATWG HTML §9.2), also across arbitrary chunk splits."""

from __future__ import annotations

import pytest

from authmesh.service._sse import ServerSentEvent, SSEParser

FEED = (
    ": a comment\n"
    "retry: 1000\n"
    "\n"
    "id: 17\n"
    "event: revocation\n"
    'data: {"cursor": 17}\n'
    "\n"
    "event: heartbeat\n"
    "data:line one\n"
    "data:  two spaces\n"
    "\n"
    "data\n"
    "\n"
    "event: ignored-without-data\n"
    "\n"
    "id: 18\0x\n"
    "data: nul id ignored\n"
    "\n"
    "id\n"
    "data: id reset\n"
    "\n"
    "unknown: field\n"
    "data: trailing without blank line"
)

EXPECTED = [
    ServerSentEvent("revocation", '{"cursor": 17}', "17", 1000),
    ServerSentEvent("heartbeat", "line one\n two spaces", "17", 1000),
    ServerSentEvent("message", "", "17", 1000),
    ServerSentEvent("message", "nul id ignored", "17", 1000),
    ServerSentEvent("message", "id reset", "", 1000),
]


def parse_all(chunks: list[str]) -> list[ServerSentEvent]:
    parser = SSEParser()
    events = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_whole_stream(newline: str) -> None:
    assert parse_all([FEED.replace("\n", newline)]) == EXPECTED


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_every_two_chunk_split(newline: str) -> None:
    text = FEED.replace("\n", newline)
    for cut in range(len(text) + 1):
        assert parse_all([text[:cut], text[cut:]]) == EXPECTED, cut


def test_one_character_at_a_time_with_crlf() -> None:
    text = FEED.replace("\n", "\r\n")
    assert parse_all(list(text)) == EXPECTED
    assert parse_all([*list(text[:40]), "", "", text[40:]]) == EXPECTED


def test_bom_is_skipped_once() -> None:
    assert parse_all(["\ufeffdata: x\n\n"]) == [ServerSentEvent("message", "x", None)]
    assert parse_all(["\ufeff", "data: x\n\n"]) == [ServerSentEvent("message", "x", None)]


def test_last_event_id_and_retry() -> None:
    parser = SSEParser()
    parser.feed("id: 5\nretry: x\nretry: 250\ndata: a\n\n")
    assert parser.last_event_id == "5"
    assert parser.retry == 250


def test_overlong_line_is_refused() -> None:
    parser = SSEParser()
    with pytest.raises(ValueError, match="longer"):
        parser.feed("data: " + "x" * (1 << 20))
