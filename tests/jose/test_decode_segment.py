"""A JSON segment is read exactly as strictly on its fast path as on ``json``'s own.

``decode_segment`` hands a segment that is one bare object straight to the C
scanner and everything else to the full decoder: both must answer alike, so each
row is an object the fast path sees first. ``decode_flat_segment`` (a DPoP
proof's claims) skips the duplicate check when the commas show there can be no
duplicate: it must refuse every duplicate all the same.
"""

from __future__ import annotations

import pytest

from authmesh.jose.b64 import b64url_encode
from authmesh.jose.errors import MalformedToken
from authmesh.jose.jws import decode_flat_segment, decode_segment


def _segment(text: str) -> bytes:
    return b64url_encode(text.encode())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a":1,"b":[1,2],"c":{"d":"e"}}', {"a": 1, "b": [1, 2], "c": {"d": "e"}}),
        (' \n{"a":1}', {"a": 1}),
        ('{"a":1} \r\n\t', {"a": 1}),
        ('{"\\u0061":"\\u00e9"}', {"a": "é"}),
    ],
    ids=["compact", "leading-whitespace", "trailing-whitespace", "escapes"],
)
def test_an_object_reads_as_json_says(text: str, expected: dict[str, object]) -> None:
    assert decode_segment(_segment(text), what="payload") == expected


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1}x',
        '{"a":1}{"a":2}',
        '{"a":1},',
        '{"a":1',
        "{",
        '{"a":1,"a":2}',
        '{"a":{"b":1,"b":2}}',
        '{"a":1,"\\u0061":2}',
        '{"a":NaN}',
        '{"a":-Infinity}',
        "[1]",
        '"{}"',
        "",
    ],
    ids=[
        "trailing-garbage",
        "two-objects",
        "trailing-comma",
        "unterminated",
        "brace-only",
        "duplicate-member",
        "duplicate-nested-member",
        "duplicate-escaped-member",
        "nan",
        "infinity",
        "array",
        "string",
        "empty",
    ],
)
def test_anything_else_is_malformed(text: str) -> None:
    with pytest.raises(MalformedToken):
        decode_segment(_segment(text), what="payload")


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1,"b":"x"}',
        '{"a":"x,y","b":1}',
        '{"a":[1,2],"b":{"c":1,"d":2}}',
        '{"a":{"b":{"c":1}}}',
        ' {"a":1}',
        '{"a":1} ',
        '{"\\u0061":"\\u00e9"}',
        "{}",
    ],
    ids=[
        "flat",
        "comma-in-string",
        "array-and-object",
        "nested-single-members",
        "leading-whitespace",
        "trailing-whitespace",
        "escapes",
        "empty-object",
    ],
)
def test_the_flat_reader_reads_an_object_as_the_strict_one(text: str) -> None:
    segment = _segment(text)

    assert decode_flat_segment(segment, what="payload") == decode_segment(segment, what="payload")


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1,"a":2}',
        '{"a":1,"\\u0061":2}',
        '{"a":"x,y","a":1}',
        '{"a":{"b":1,"b":2}}',
        '{"a":{"b":1,"b":2},"c":","}',
        '{"a":[1,2],"a":3}',
        '{"a":{"b":{"c":1,"c":2}}}',
        '{"a":1 , "a":2}',
        '{"a":NaN}',
        '{"a":1}x',
        '{"a":1},',
        "[1,2]",
        '"{,}"',
        "",
    ],
    ids=[
        "duplicate-member",
        "duplicate-escaped-member",
        "duplicate-behind-a-comma-in-a-string",
        "duplicate-nested-member",
        "duplicate-nested-member-and-a-comma-in-a-string",
        "duplicate-beside-an-array",
        "duplicate-deeply-nested",
        "duplicate-with-whitespace",
        "nan",
        "trailing-garbage",
        "trailing-comma",
        "array",
        "string",
        "empty",
    ],
)
def test_the_flat_reader_refuses_what_the_strict_one_refuses(text: str) -> None:
    with pytest.raises(MalformedToken):
        decode_segment(_segment(text), what="payload")
    with pytest.raises(MalformedToken):
        decode_flat_segment(_segment(text), what="payload")
