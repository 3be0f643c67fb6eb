"""Structural rules of a header and payload: alg, key pointers, signature size, claim types."""

from __future__ import annotations

from typing import Any

from authmesh.inspector.findings import Problem
from authmesh.jose.jws import FORBIDDEN_HEADERS
from authmesh.jose.keys import SUPPORTED_ALGORITHMS

__all__ = ["NUMERIC_DATE_CLAIMS", "check_claims", "check_header"]

#: Claims whose value is a NumericDate: seconds since 1970-01-01 UTC (RFC 7519 §2).
NUMERIC_DATE_CLAIMS: tuple[str, ...] = ("exp", "iat", "nbf", "auth_time")

_STRING_CLAIMS = ("iss", "sub", "jti", "client_id", "sid", "scope")
#: Signature sizes fixed by the algorithm (RFC 7518 §3.2, §3.4; RFC 8037 §3.1).
_SIGNATURE_BYTES = {"HS256": 32, "ES256": 64, "EdDSA": 64}
_MIN_RSA_SIGNATURE_BYTES = 256


def check_header(
    header: dict[str, Any], signature_length: int | None, problems: list[Problem]
) -> None:
    """Append to ``problems`` what is wrong with ``header`` and the signature's size."""

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


def check_claims(payload: dict[str, Any], problems: list[Problem]) -> None:
    """Append to ``problems`` the registered claims of ``payload`` that have the wrong type."""

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
