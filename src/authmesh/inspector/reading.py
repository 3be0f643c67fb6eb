"""Reading a token without verifying it: what it says, what is wrong with it, what it leaks.

Lenient on purpose, like jwt.io: every part that can be decoded is shown, even
when another part is broken, and each fault is reported as a
:class:`~authmesh.inspector.findings.Problem` instead of an exception. Nothing
here decides whether a token may be accepted: only
:func:`authmesh.jose.verify_jwt` does that.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from typing import Any

from authmesh.inspector.checks import check_claims, check_header
from authmesh.inspector.findings import Inspection, Problem, SensitiveClaim
from authmesh.inspector.sensitive import find_sensitive
from authmesh.jose.b64 import b64url_decode

__all__ = ["inspect_token"]


def inspect_token(token: str, *, max_token_bytes: int = 8192) -> Inspection:
    """Decode ``token`` without verifying it, and list what is wrong with it.

    Args:
        token: a compact JWS, as a client would send it.
        max_token_bytes: the size above which verifiers refuse a token, for a warning.

    Never raises for a bad token: faults become :attr:`Inspection.problems`.
    """
    problems: list[Problem] = []
    text = _normalise(token, problems, max_token_bytes)
    parts = text.split(".") if text else []
    header_value: Any = None
    payload_value: Any = None
    header_text = payload_text = None
    signature_length = None

    _check_segment_count(len(parts), problems)
    if parts:
        header_value, header_text = _decode_part(parts[0], "header", problems)
    if len(parts) in (2, 3, 4):
        payload_value, payload_text = _decode_part(parts[1], "payload", problems)
    if len(parts) == 3:
        signature_length = _decode_signature(parts[2], problems)

    header = header_value if isinstance(header_value, dict) else None
    payload = payload_value if isinstance(payload_value, dict) else None
    if header is not None:
        check_header(header, signature_length, problems)
    if payload is not None:
        check_claims(payload, problems)

    sensitive: list[SensitiveClaim] = []
    if header is not None:
        sensitive += find_sensitive("header", header)
    if payload is not None:
        sensitive += find_sensitive("payload", payload)
    return Inspection(
        header=header,
        payload=payload,
        header_text=header_text,
        payload_text=payload_text,
        signature_length=signature_length,
        segments=len(parts),
        size=len(token),
        problems=tuple(problems),
        sensitive=tuple(sensitive),
    )


# -- structure -----------------------------------------------------------------------


def _normalise(token: str, problems: list[Problem], max_token_bytes: int) -> str:
    """The token without a ``Bearer`` prefix or whitespace, each noted as a problem."""
    text = token.strip()
    if not text:
        problems.append(Problem(code="empty", part="token", message="the token is empty"))
        return ""
    if len(token) > max_token_bytes:
        problems.append(
            Problem(
                code="too_large",
                part="token",
                message=f"the token is {len(token)} bytes; verifiers refuse more than "
                f"{max_token_bytes} by default",
            )
        )
    if text[:7].lower() == "bearer ":
        problems.append(
            Problem(
                code="bearer_prefix",
                part="token",
                message="the token starts with 'Bearer ': that belongs to the HTTP header only",
            )
        )
        text = text[7:].strip()
    if token != token.strip() or any(ch.isspace() for ch in text):
        problems.append(
            Problem(
                code="whitespace",
                part="token",
                message="the token contains whitespace (ignored here, rejected by verifiers)",
            )
        )
        text = "".join(text.split())
    if not text.isascii():
        problems.append(
            Problem(
                code="non_ascii",
                part="token",
                message="the token contains characters outside base64url",
            )
        )
    return text


def _check_segment_count(count: int, problems: list[Problem]) -> None:
    if count in (0, 3):
        return
    if count == 5:
        message = (
            "the token has five parts: an encrypted JWE, whose payload cannot be read "
            "without the decryption key (authmesh issues signed JWS tokens)"
        )
    else:
        message = f"a JWT has three dot-separated parts; this one has {count}"
    problems.append(Problem(code="not_three_parts", part="token", message=message))


def _lenient_b64(segment: str) -> bytes | None:
    """Decode despite padding, the standard alphabet or stray bits; ``None`` if hopeless."""
    cleaned = segment.rstrip("=").replace("+", "-").replace("/", "_")
    if len(cleaned) % 4 == 1 or not cleaned.isascii():
        return None
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        return None


def _decode_b64(segment: str, part: str, problems: list[Problem]) -> bytes | None:
    try:
        return b64url_decode(segment.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        pass
    data = _lenient_b64(segment)
    if data is None:
        problems.append(
            Problem(code="bad_base64", part=part, message=f"the {part} is not base64url")
        )
    else:
        problems.append(
            Problem(
                code="bad_base64",
                part=part,
                message=f"the {part} is not strict base64url (padding, '+' or '/', or "
                "non-zero trailing bits); shown as decoded leniently",
            )
        )
    return data


def _decode_part(segment: str, part: str, problems: list[Problem]) -> tuple[Any, str | None]:
    """The JSON value of a header or payload segment, and its text if it is no object."""
    data = _decode_b64(segment, part, problems)
    if data is None:
        return None, None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(Problem(code="not_utf8", part=part, message=f"the {part} is not UTF-8"))
        return None, data.decode("utf-8", "replace")
    oddities: list[str] = []
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs_noting_duplicates(oddities),
            parse_constant=_constant_as_text(oddities),
            parse_float=_float_or_text(oddities),
        )
    except (ValueError, RecursionError):
        problems.append(Problem(code="not_json", part=part, message=f"the {part} is not JSON"))
        return None, text
    for oddity in dict.fromkeys(oddities):
        problems.append(Problem(code=oddity, part=part, message=_ODDITIES[oddity].format(part)))
    if not isinstance(value, dict):
        problems.append(
            Problem(code="not_object", part=part, message=f"the {part} is not a JSON object")
        )
        return value, text
    return value, None


_ODDITIES = {
    "duplicate_member": "the {} repeats a member name; parsers disagree on which one counts",
    "not_json_constant": "the {} uses NaN or Infinity, which JSON does not allow (shown as text)",
    "number_out_of_range": "the {} has a number too large for a float (shown as text)",
}


def _pairs_noting_duplicates(oddities: list[str]) -> Callable[[list[tuple[str, Any]]], Any]:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            oddities.append("duplicate_member")
        return result

    return hook


def _constant_as_text(oddities: list[str]) -> Callable[[str], str]:
    def hook(name: str) -> str:
        oddities.append("not_json_constant")
        return name

    return hook


def _float_or_text(oddities: list[str]) -> Callable[[str], float | str]:
    def hook(literal: str) -> float | str:
        value = float(literal)
        if math.isfinite(value):
            return value
        oddities.append("number_out_of_range")
        return literal

    return hook


def _decode_signature(segment: str, problems: list[Problem]) -> int | None:
    if not segment:
        problems.append(
            Problem(
                code="no_signature",
                part="signature",
                message="the signature is empty: an unsigned token",
            )
        )
        return None
    data = _decode_b64(segment, "signature", problems)
    return None if data is None else len(data)
