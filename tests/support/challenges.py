"""Reading ``WWW-Authenticate: Bearer`` challenges strictly (RFC 6750 §3), for assertions."""

from __future__ import annotations

import re

__all__ = ["parse_challenge"]

# RFC 6750 §3: auth-param values; error_description chars %x20-21 / %x23-5B / %x5D-7E.
PARAM = re.compile(r'([a-z_]+)="([\x20\x21\x23-\x5b\x5d-\x7e]*)"')


def parse_challenge(header: str) -> dict[str, str]:
    """Parse ``Bearer k="v", …`` strictly: anything unparsed fails the test."""
    assert header.startswith("Bearer ")
    rest, params = header[len("Bearer ") :], {}
    while rest:
        match = PARAM.match(rest)
        assert match, f"not RFC 6750 at {rest!r}"
        assert match[1] not in params
        params[match[1]] = match[2]
        rest = rest[match.end() :]
        if rest:
            assert rest.startswith(", "), rest
            rest = rest[2:]
    return params
