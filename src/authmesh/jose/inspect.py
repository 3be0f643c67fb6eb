"""Reading a token without verifying it: what it says, what is wrong with it, what it leaks.

Lenient on purpose, like jwt.io: every part that can be decoded is shown, even
when another part is broken, and each fault is reported as a :class:`Problem`
instead of an exception. Nothing here decides whether a token may be accepted:
only :func:`authmesh.jose.verify_jwt` does that.

Tokens are signed, not encrypted (RFC 7515): anyone who holds one can read its
payload, so claims that look like secrets or personal data are reported as
:class:`SensitiveClaim`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authmesh.jose.b64 import b64url_decode
from authmesh.jose.jws import FORBIDDEN_HEADERS
from authmesh.jose.keys import SUPPORTED_ALGORITHMS

__all__ = [
    "NUMERIC_DATE_CLAIMS",
    "Inspection",
    "Problem",
    "SensitiveClaim",
    "inspect_token",
]

#: Claims whose value is a NumericDate: seconds since 1970-01-01 UTC (RFC 7519 §2).
NUMERIC_DATE_CLAIMS: tuple[str, ...] = ("exp", "iat", "nbf", "auth_time")

_STRING_CLAIMS = ("iss", "sub", "jti", "client_id", "sid", "scope")
#: Signature sizes fixed by the algorithm (RFC 7518 §3.2, §3.4; RFC 8037 §3.1).
_SIGNATURE_BYTES = {"HS256": 32, "ES256": 64, "EdDSA": 64}
_MIN_RSA_SIGNATURE_BYTES = 256
_MAX_DEPTH = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """A structural fault of a token.

    Attributes:
        code: a stable identifier, e.g. ``"bad_base64"`` or ``"alg_none"``.
        part: where it is: ``"token"``, ``"header"``, ``"payload"`` or ``"signature"``.
        message: a sentence for a person.
    """

    code: str
    part: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SensitiveClaim:
    """A member whose name or value looks like data a token must not carry in clear.

    Attributes:
        location: ``"header"`` or ``"payload"``.
        path: the member, e.g. ``"password"`` or ``"profile.cards[0]"``.
        category: ``"secret"``, ``"private key"``, ``"payment card"``,
            ``"government id"`` or ``"personal data"``.
        message: why it matters.
    """

    location: str
    path: str
    category: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Inspection:
    """What an unverified token contains.

    Attributes:
        header: the header, when it decodes to a JSON object.
        payload: the claims, when they decode to a JSON object.
        header_text: the decoded header when it is not a JSON object (else ``None``).
        payload_text: the decoded payload when it is not a JSON object (else ``None``).
        signature_length: bytes of the decoded signature; ``None`` if absent or undecodable.
        segments: how many dot-separated parts the token has (a JWS has 3).
        size: the token's length in characters.
        problems: structural faults, in the order found.
        sensitive: members that look like secrets or personal data.
    """

    header: dict[str, Any] | None
    payload: dict[str, Any] | None
    header_text: str | None
    payload_text: str | None
    signature_length: int | None
    segments: int
    size: int
    problems: tuple[Problem, ...]
    sensitive: tuple[SensitiveClaim, ...]

    @property
    def decoded(self) -> bool:
        """Whether both the header and the payload are JSON objects."""
        return self.header is not None and self.payload is not None


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
        _check_header(header, signature_length, problems)
    if payload is not None:
        _check_claims(payload, problems)

    sensitive: list[SensitiveClaim] = []
    if header is not None:
        _scan("header", header, "", sensitive, 0)
    if payload is not None:
        _scan("payload", payload, "", sensitive, 0)
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


def _check_header(
    header: dict[str, Any], signature_length: int | None, problems: list[Problem]
) -> None:
    def add(code: str, message: str) -> None:
        problems.append(Problem(code=code, part="header", message=message))

    alg = header.get("alg")
    if not isinstance(alg, str):
        add("alg_missing", "the header has no 'alg' string")
    elif alg.lower() == "none":
        add("alg_none", "alg is 'none': an unsigned token, which no verifier may accept")
    elif alg not in SUPPORTED_ALGORITHMS:
        add(
            "alg_unsupported",
            f"alg {alg[:40]!r} is not one authmesh accepts ({', '.join(SUPPORTED_ALGORITHMS)})",
        )
    for name in sorted(FORBIDDEN_HEADERS.intersection(header)):
        add(
            "forbidden_header",
            f"the header carries {name!r}, which points at or embeds a key: verifiers take "
            "keys only from the issuer (RFC 8725 §3.10)",
        )
    if "crit" in header:
        add(
            "crit",
            f"the header lists critical extensions {header['crit']!r}, which authmesh "
            "does not support (RFC 7515 §4.1.11)",
        )
    kid = header.get("kid")
    if "kid" in header and (not isinstance(kid, str) or not kid):
        add("bad_kid", "the header's 'kid' is not a non-empty string")
    if signature_length is not None and isinstance(alg, str):
        expected = _SIGNATURE_BYTES.get(alg)
        if expected is not None and signature_length != expected:
            extra = " (DER-encoded? JWS wants R||S)" if alg == "ES256" else ""
            problems.append(
                Problem(
                    code="signature_length",
                    part="signature",
                    message=f"an {alg} signature has {expected} bytes; this one has "
                    f"{signature_length}{extra}",
                )
            )
        elif alg == "RS256" and signature_length < _MIN_RSA_SIGNATURE_BYTES:
            problems.append(
                Problem(
                    code="signature_length",
                    part="signature",
                    message=f"an RS256 signature from a key of at least 2048 bits has at "
                    f"least {_MIN_RSA_SIGNATURE_BYTES} bytes; this one has {signature_length}",
                )
            )


def _check_claims(payload: dict[str, Any], problems: list[Problem]) -> None:
    def add(code: str, message: str) -> None:
        problems.append(Problem(code=code, part="payload", message=message))

    for name in NUMERIC_DATE_CLAIMS:
        if name not in payload:
            continue
        value = payload[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            add(
                "bad_numeric_date",
                f"'{name}' must be a number of seconds since 1970 (RFC 7519 §2 NumericDate)",
            )
    for name in _STRING_CLAIMS:
        if name in payload and not isinstance(payload[name], str):
            add("bad_claim_type", f"'{name}' must be a string")
    aud = payload.get("aud")
    if "aud" in payload and not (
        isinstance(aud, str)
        or (isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud))
    ):
        add("bad_claim_type", "'aud' must be a string or a non-empty list of strings")


# -- sensitive members ---------------------------------------------------------------

_MESSAGES = {
    "secret": "looks like a secret or credential; a JWT is signed, not encrypted: "
    "anyone holding it can read this",
    "private key": "looks like private key material; anyone holding the token can read "
    "it, so treat that key as compromised",
    "payment card": "looks like payment card data, which must never travel in a token",
    "government id": "looks like a government identifier, readable by anyone holding the token",
    "personal data": "is personal data, readable by anyone holding the token; carry it "
    "only if every recipient needs it",
}
# Matched against the member name, lower-cased, with everything but [a-z0-9] removed.
_NAME_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private key", re.compile(r"privatekey|privkey|signingkey")),
    ("secret", re.compile(r"passw(or)?d|passphrase|pwd$|^pass$|secret|apikey|accesskey")),
    ("secret", re.compile(r"authtoken|refreshtoken|credential|^pin$|^otp$|sessionkey")),
    ("payment card", re.compile(r"creditcard|cardnumber|ccnumber|^ccn$|^pan$|^cvv2?$|^cvc$")),
    ("payment card", re.compile(r"iban$")),
    ("government id", re.compile(r"^ssn$|socialsecurity|passport|taxid|nationalid")),
    ("personal data", re.compile(r"email|phone|birthdate|dateofbirth|^dob$|address")),
)
# Categories whose name match counts only for a value with content (not a flag or a date).
_NEEDS_TEXT = frozenset({"secret", "private key", "personal data"})
_PEM_PRIVATE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_JWT_LIKE = re.compile(r"^eyJ[\w-]+\.[\w-]+\.[\w-]*$")
_CARD_LIKE = re.compile(r"^\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}$")
_SSN_LIKE = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_EMAIL_LIKE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


def _scan(location: str, node: Any, path: str, found: list[SensitiveClaim], depth: int) -> None:
    """Walk a JSON value and record members that look sensitive, one finding per path."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, dict):
        for name, value in node.items():
            child = f"{path}.{name}" if path else str(name)
            category = _by_name(str(name), value) or _by_value(value)
            if category:
                found.append(
                    SensitiveClaim(
                        location=location,
                        path=child,
                        category=category,
                        message=_MESSAGES[category],
                    )
                )
            else:
                _scan(location, value, child, found, depth + 1)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            child = f"{path}[{index}]"
            category = _by_value(value)
            if category:
                found.append(
                    SensitiveClaim(
                        location=location,
                        path=child,
                        category=category,
                        message=_MESSAGES[category],
                    )
                )
            else:
                _scan(location, value, child, found, depth + 1)


def _by_name(name: str, value: Any) -> str | None:
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    for category, pattern in _NAME_RULES:
        if pattern.search(key):
            has_text = isinstance(value, str | dict | list) and bool(value)
            has_number = isinstance(value, int) and not isinstance(value, bool)
            if has_text or (category not in _NEEDS_TEXT and has_number):
                return category
            return None
    return None


def _by_value(value: Any) -> str | None:
    if isinstance(value, dict):
        kty = value.get("kty")
        if isinstance(kty, str) and ("d" in value or (kty == "oct" and "k" in value)):
            return "private key"
        return None
    if not isinstance(value, str):
        return None
    if _PEM_PRIVATE.search(value):
        return "private key"
    if _JWT_LIKE.match(value):
        return "secret"
    if _CARD_LIKE.match(value) and _luhn(value):
        return "payment card"
    if _SSN_LIKE.match(value):
        return "government id"
    if _EMAIL_LIKE.match(value):
        return "personal data"
    return None


def _luhn(number: str) -> bool:
    digits = [int(ch) for ch in number if ch.isdigit()]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return 13 <= len(digits) <= 19 and total % 10 == 0
