"""Members of a token that look like secrets or personal data, readable by anyone holding it.

Tokens are signed, not encrypted (RFC 7515): anyone who holds one can read its
payload, so claims that look like secrets or personal data are reported as
:class:`~authmesh.inspector.findings.SensitiveClaim`.
"""

from __future__ import annotations

import re
from typing import Any

from authmesh.inspector.findings import SensitiveClaim

__all__ = ["find_sensitive"]

_MAX_DEPTH = 32

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


def find_sensitive(location: str, node: Any) -> list[SensitiveClaim]:
    """Members of ``node`` (the header or payload found at ``location``) that look sensitive."""
    found: list[SensitiveClaim] = []
    _scan(location, node, "", found, 0)
    return found


def _scan(location: str, node: Any, path: str, found: list[SensitiveClaim], depth: int) -> None:
    """Walk a JSON value and record members that look sensitive, one finding per path."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, dict):
        members = [
            (f"{path}.{name}" if path else str(name), _by_name(str(name), value), value)
            for name, value in node.items()
        ]
    elif isinstance(node, list):
        members = [(f"{path}[{index}]", None, value) for index, value in enumerate(node)]
    else:
        return
    for child, by_name, value in members:
        category = by_name or _by_value(value)
        if category:
            found.append(
                SensitiveClaim(
                    location=location, path=child, category=category, message=_MESSAGES[category]
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
