"""A JSON segment is read exactly as strictly on its fast path as on ``json``'s own.

``decode_segment`` hands a segment that is one bare object straight to the C
scanner and everything else to the full decoder: both must answer alike, so each
row is an object the fast path sees first.
"""

from __future__ import annotations

import pytest

from authmesh.jose.b64 import b64url_encode
from authmesh.jose.errors import MalformedToken
from authmesh.jose.jws import decode_segment


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
