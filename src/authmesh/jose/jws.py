"""Compact JWS for JWTs: sign, and verify in one pass with every RFC 8725 rule.

The verify path is our own lean code over ``cryptography``: base64url, JSON and
the primitive, nothing more; the tests hold it to accept nothing that PyJWT and
joserfc would reject.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from authmesh.jose.b64 import b64url_decode, b64url_encode
from authmesh.jose.claims import check_claims
from authmesh.jose.errors import (
    AlgNotAllowed,
    BadSignature,
    ForbiddenHeader,
    MalformedToken,
    TokenTooLarge,
    UnknownKid,
    UnsupportedCritical,
    WrongType,
)
from authmesh.jose.keys import Key
from authmesh.jose.keyset import KeyResolver
from authmesh.jose.policy import Clock, VerifyPolicy

__all__ = [
    "FORBIDDEN_HEADERS",
    "VerifiedJWS",
    "VerifiedToken",
    "decode_flat_segment",
    "decode_segment",
    "sign_jwt",
    "verify_jws",
    "verify_jwt",
]

#: Header parameters that point at or embed a key: trusting any of them lets the
#: attacker choose the key (RFC 8725 §3.10 and the CVEs behind it).
FORBIDDEN_HEADERS: frozenset[str] = frozenset({"jku", "x5u", "jwk", "x5c"})

_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member name")
    return result


# Duplicate members are refused in the header and the claims alike. RFC 7519 §4
# would let a parser keep the last one, but verifiers that keep the first exist
# (in other languages), and two readers of one signed token must not see two
# different "aud" or "sub".
_JSON = json.JSONDecoder(parse_constant=_no_constants, object_pairs_hook=_unique_pairs)
_DECODER = _JSON.decode
# The C scanner under ``decode``: a segment that is one object with no whitespace
# around it (every JWT we meet) skips ``decode``'s two whitespace regexes and its
# Python frames. Anything else goes through ``decode``, which gives the same
# answer or the same error.
_SCAN_ONCE = _JSON.scan_once  # type: ignore[attr-defined]


def _loads(text: str) -> Any:
    if text[:1] == "{":
        try:
            obj, end = _SCAN_ONCE(text, 0)
        except StopIteration:
            pass
        else:
            if end == len(text):
                return obj
    return _DECODER(text)


# The same scanner building dicts itself, with no Python hook per object; see
# ``decode_flat_segment`` for when its answer can be trusted.
_SCAN_PLAIN = json.JSONDecoder(parse_constant=_no_constants).scan_once  # type: ignore[attr-defined]


def decode_flat_segment(segment: bytes, *, what: str) -> dict[str, Any]:
    """:func:`decode_segment`, quicker for an object without commas in its values.

    The object is read without the duplicate check first, then kept only if it
    has one member more than its text has commas. Every member but the first
    follows a comma, so it then has no member twice, and its values hold no comma
    at all: no nested object has a second member to repeat a name with. Anything
    else (a comma in a string or between an array's items) is read again by
    :func:`decode_segment`, which gives the same answer or the same refusal.

    Raises:
        MalformedToken: as :func:`decode_segment`.
    """
    try:
        text = b64url_decode(segment).decode("utf-8")
        obj, end = _SCAN_PLAIN(text, 0)
    except (ValueError, UnicodeDecodeError, RecursionError, StopIteration):
        return decode_segment(segment, what=what)
    if end != len(text) or type(obj) is not dict or len(obj) != text.count(",") + 1:
        return decode_segment(segment, what=what)
    return obj


def decode_segment(segment: bytes, *, what: str) -> dict[str, Any]:
    """Decode one base64url JSON-object segment (no duplicate member names, at any depth).

    Raises:
        MalformedToken: not strict base64url, not UTF-8 JSON, or not an object.
    """
    try:
        text = b64url_decode(segment).decode("utf-8")
        obj = _loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedToken(f"the token {what} is not base64url-encoded JSON") from None
    if not isinstance(obj, dict):
        raise MalformedToken(f"the token {what} is not a JSON object")
    return obj


@dataclass(frozen=True, slots=True)
class VerifiedJWS:
    """A JWS whose header rules and signature passed; the payload is not interpreted."""

    header: dict[str, Any]
    payload: bytes
    kid: str | None
    alg: str


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token that passed every check: its header, its claims and the key used."""

    header: dict[str, Any]
    claims: dict[str, Any]
    kid: str | None
    alg: str


def sign_jwt(
    claims: Mapping[str, Any],
    key: Key,
    *,
    typ: str = "JWT",
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Sign a JWT with ``key``; the header gets the key's ``alg`` and ``kid``.

    Raises:
        InvalidKey: the key cannot sign.
        ValueError: extra headers try to set a key-pointing parameter.
    """
    header: dict[str, Any] = {"alg": key.alg, "kid": key.kid, "typ": typ}
    if headers:
        bad = FORBIDDEN_HEADERS.intersection(headers) | {"alg", "kid"}.intersection(headers)
        if bad:
            raise ValueError(f"header parameters {sorted(bad)} cannot be set here")
        header.update(headers)
    signing_input = (
        b64url_encode(_DUMPS(header).encode()) + b"." + b64url_encode(_DUMPS(claims).encode())
    )
    return (signing_input + b"." + b64url_encode(key.sign(signing_input))).decode("ascii")


#: Registered header parameters whose value is a string (RFC 7515 §4.1, RFC 7519 §5.2).
_STRING_HEADERS = ("cty", "x5t", "x5t#S256")


def _check_rare_members(header: dict[str, Any]) -> None:
    """Refuse what other verifiers would read differently, even without ``crit``.

    ``b64: false`` (RFC 7797) changes what the payload segment means: an
    RFC 7797 verifier reads it raw where we would base64url-decode it, so it is
    refused rather than ignored. Registered members must have their registered type.
    """
    if "b64" in header and header["b64"] is not True:
        raise UnsupportedCritical("unencoded payloads (RFC 7797 b64) are not supported")
    for name in _STRING_HEADERS:
        if name in header and not isinstance(header[name], str):
            raise MalformedToken(f"the token header member {name!r} must be a string")


#: Parsed headers that passed every rule independent of the policy, by their
#: base64url segment. Every token of one signing key carries the same header, so a
#: verifier sees a handful of distinct ones; parsing it again (base64url, JSON with
#: the duplicate-member check, the forbidden/crit/b64/typed-member rules) would
#: redo identical work per token. Bounded: cleared when full, so a flood of
#: distinct headers costs only the uncached path it would cost anyway.
_HEADER_MEMO: dict[bytes, tuple[dict[str, Any], str, Any, Any]] = {}
_HEADER_MEMO_SIZE = 64


def _remember_header(
    header_b64: bytes, header: dict[str, Any], alg: str, typ: Any, kid: Any
) -> None:
    # Only flat headers (string values) are kept, so that a shallow copy is a full one.
    if all(type(v) is str for v in header.values()):
        if len(_HEADER_MEMO) >= _HEADER_MEMO_SIZE:
            _HEADER_MEMO.clear()
        _HEADER_MEMO[header_b64] = (dict(header), alg, typ, kid)


def _verify_signed(
    token: str | bytes, keys: KeyResolver, policy: VerifyPolicy
) -> tuple[dict[str, Any], bytes, Key]:
    """Structure, header rules and signature; returns the header, payload segment and key."""
    if isinstance(token, str):
        if len(token) > policy.max_token_bytes:
            raise TokenTooLarge()
        if not token.isascii():
            raise MalformedToken("the token contains characters outside base64url")
        raw = token.encode("ascii")
    else:
        raw = token
        if len(raw) > policy.max_token_bytes:
            raise TokenTooLarge()
    parts = raw.split(b".")
    if len(parts) != 3:
        raise MalformedToken("a JWT has three dot-separated parts")
    header_b64, payload_b64, signature_b64 = parts

    memo = _HEADER_MEMO.get(header_b64)
    if memo is not None:
        # This header passed every policy-free rule before; only the policy's own
        # rules remain, in the same order as below.
        header = dict(memo[0])
        alg, typ, kid = memo[1], memo[2], memo[3]
        if alg not in policy.algorithms:
            raise AlgNotAllowed(f"the algorithm {alg[:20]!r} is not accepted")
    else:
        header = decode_segment(header_b64, what="header")
        named = header.get("alg")
        if not isinstance(named, str) or named.lower() == "none":
            raise AlgNotAllowed("unsigned tokens (alg none) are not accepted")
        alg = named
        if alg not in policy.algorithms:
            raise AlgNotAllowed(f"the algorithm {alg[:20]!r} is not accepted")
        if not FORBIDDEN_HEADERS.isdisjoint(header):
            raise ForbiddenHeader(
                "the token header must not carry jku, x5u, jwk or x5c: keys come from the issuer"
            )
        if "crit" in header:
            raise UnsupportedCritical()
        _check_rare_members(header)
        typ = header.get("typ")
        kid = header.get("kid")
        _remember_header(header_b64, header, alg, typ, kid)
    if not policy.type_allowed(typ):
        raise WrongType()
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise UnknownKid("the token's key id is not a non-empty string")
    key = keys.get(kid)
    if key is None:
        raise UnknownKid("the token header has no key id" if kid is None else None)
    if key.alg != alg:
        # Also what stops HS256 keyed with an RSA public key: the key's alg is RS256.
        raise AlgNotAllowed("the token's algorithm is not the one bound to its key")

    try:
        signature = b64url_decode(signature_b64)
    except ValueError:
        raise MalformedToken("the token signature is not base64url-encoded") from None
    if not key.verify(header_b64 + b"." + payload_b64, signature):
        raise BadSignature()
    return header, payload_b64, key


def verify_jws(token: str | bytes, keys: KeyResolver, policy: VerifyPolicy) -> VerifiedJWS:
    """Verify a compact JWS (any payload): every header rule and the signature.

    Raises:
        TokenRejected: a subclass with the reason of the first failed rule.
    """
    header, payload_b64, key = _verify_signed(token, keys, policy)
    try:
        payload = b64url_decode(payload_b64)
    except ValueError:
        raise MalformedToken("the token payload is not base64url-encoded") from None
    return VerifiedJWS(header=header, payload=payload, kid=header.get("kid"), alg=key.alg)


def verify_jwt(
    token: str | bytes,
    keys: KeyResolver,
    policy: VerifyPolicy,
    *,
    clock: Clock = time.time,
) -> VerifiedToken:
    """Verify a compact JWS JWT: structure, header rules, signature, then claims.

    Checks in order: size; three strict base64url segments; the header is a JSON
    object (no duplicate members) whose ``alg`` is allowed and is not ``none``;
    no ``jku``/``x5u``/``jwk``/``x5c``; no ``crit`` and no ``b64: false``;
    registered members of their registered type; ``typ`` accepted; ``kid``
    names a trusted key bound to exactly that ``alg``; signature; then the
    claims (RFC 7519 §4.1, RFC 8725 §3).

    Raises:
        TokenRejected: a subclass with the reason of the first failed rule.
    """
    header, payload_b64, key = _verify_signed(token, keys, policy)
    claims = decode_segment(payload_b64, what="payload")
    check_claims(claims, policy, clock())
    return VerifiedToken(header=header, claims=claims, kid=header.get("kid"), alg=key.alg)
