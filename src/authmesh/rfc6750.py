"""Bearer token usage (RFC 6750), once for the auth server and the service SDK.

:func:`parse_authorization` reads the ``Authorization`` header (§2.1), and
the challenge functions turn a failure into the one HTTP answer (§3):

=========================  ======  ==========================================
failure                    status  ``WWW-Authenticate: Bearer realm="…"`` plus
=========================  ======  ==========================================
no token                   401     nothing (§3.1: no error code)
malformed header           401     ``error="invalid_request"``
bad, expired, revoked…     401     ``error="invalid_token"``
missing role or scope      403     ``error="insufficient_scope"`` (+ ``scope``)
cannot check the token     503     no challenge; ``Retry-After`` instead
=========================  ======  ==========================================

§3.1 allows 400 for ``invalid_request``; authmesh answers 401 so every
authentication failure is a 401 with a challenge a client knows to act on.

The last row is not an authentication failure: the token may be fine, but the
verifier cannot vouch for it now (its revocation feed is stale, or the issuer's
keys are not loaded yet). A 401 ``invalid_token`` would tell the client to
throw a good token away and sign in again, and every client retrying at once
would then hit the issuer. So it is a 503 with ``Retry-After`` (RFC 9110
§15.6.4, §10.2.3) and the JSON body ``{"error": "temporarily_unavailable"}``
(the OAuth 2.0 code for the same condition, RFC 6749 §4.1.2.1). It carries no
``WWW-Authenticate``: other credentials would not change the answer
(RFC 9110 §11.6.1).

A description in the header is reduced to the characters §3 allows in
``error_description`` (%x20-21 / %x23-5B / %x5D-7E): a quote becomes ``'``, a
backslash ``/``, control and non-ASCII characters are dropped, so nothing can
break out of the quoted string. A JSON body keeps the message as is.

This module imports only :mod:`authmesh.errors`, so the SDK can use it
without the server.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from authmesh.errors import BearerError, InsufficientScope, InvalidRequest

__all__ = [
    "MAX_DESCRIPTION",
    "UNAVAILABLE_RETRY_AFTER",
    "Challenge",
    "basic_challenge",
    "bearer_challenge",
    "invalid_token_challenge",
    "parse_authorization",
    "quote_param",
    "unavailable_challenge",
]

#: Longest ``error_description`` put in a header.
MAX_DESCRIPTION = 200
#: Seconds a client is asked to wait after a 503 (a stale feed reconnects within about one).
UNAVAILABLE_RETRY_AFTER = 2
_TRANSLATE = {ord('"'): "'", ord("\\"): "/", ord("\t"): " ", ord("\n"): " ", ord("\r"): " "}


def quote_param(value: str, *, limit: int = MAX_DESCRIPTION) -> str:
    """``value`` as a quoted auth-param holding only RFC 6750 §3 characters."""
    text = value.translate(_TRANSLATE)
    text = "".join(ch for ch in text if " " <= ch <= "~")[:limit]
    return f'"{text}"'


def parse_authorization(values: Sequence[str]) -> str | None:
    """The bearer token of a request's ``Authorization`` header(s) (RFC 6750 §2.1).

    Args:
        values: every ``Authorization`` header of the request.

    Returns:
        the token, or ``None`` when no header was sent.

    Raises:
        InvalidRequest: two headers, another scheme, no token or more than one.
    """
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest("send a single Authorization header")
    parts = values[0].split()
    if not parts:
        raise InvalidRequest("the Authorization header is empty")
    if parts[0].lower() != "bearer":
        raise InvalidRequest("the Authorization scheme must be Bearer")
    if len(parts) != 2:
        raise InvalidRequest(
            "the Authorization header has no token"
            if len(parts) == 1
            else "the Authorization header must carry exactly one token: 'Bearer <token>'"
        )
    return parts[1]


def parse_credentials(values: Sequence[str]) -> tuple[str, str] | None:
    """``(scheme, token)`` of a request's ``Authorization`` header: ``bearer`` or ``dpop``.

    RFC 6750 §2.1 and RFC 9449 §7.1 share the syntax ``<scheme> <token>``; the
    scheme comes back lowercase. ``None`` when no header was sent.

    Raises:
        InvalidRequest: two headers, another scheme, no token or more than one.
    """
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest("send a single Authorization header")
    parts = values[0].split()
    if not parts:
        raise InvalidRequest("the Authorization header is empty")
    scheme = parts[0].lower()
    if scheme not in ("bearer", "dpop"):
        raise InvalidRequest("the Authorization scheme must be Bearer or DPoP")
    if len(parts) != 2:
        raise InvalidRequest(
            "the Authorization header has no token"
            if len(parts) == 1
            else "the Authorization header must carry exactly one token: '<scheme> <token>'"
        )
    return scheme, parts[1]


@dataclass(frozen=True, slots=True)
class Challenge:
    """The HTTP answer to an authentication or authorization failure.

    ``www_authenticate`` is ``None`` and ``retry_after`` set (seconds) for the
    503 of a verifier that cannot check tokens right now.
    """

    status: int
    error: str | None
    description: str
    www_authenticate: str | None
    retry_after: int | None = None

    @property
    def body(self) -> bytes:
        """``{"error": …, "error_description": …}`` as JSON bytes."""
        doc = {"error": self.error or "unauthorized", "error_description": self.description}
        return json.dumps(doc, ensure_ascii=True).encode("ascii")

    @property
    def headers(self) -> list[tuple[str, str]]:
        """The response headers (challenge or ``Retry-After``, JSON, not cacheable)."""
        headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        if self.www_authenticate is not None:
            headers.insert(0, ("WWW-Authenticate", self.www_authenticate))
        if self.retry_after is not None:
            headers.insert(0, ("Retry-After", str(self.retry_after)))
        return headers


#: What a DPoP challenge offers (RFC 9449 §7.1 ``algs``).
DPOP_ALGS = "EdDSA ES256 RS256"


def _challenge(
    realm: str,
    status: int,
    error: str | None,
    description: str,
    scope: str | None = None,
    scheme: str = "Bearer",
) -> Challenge:
    params = [f"realm={quote_param(realm)}"]
    if scheme == "DPoP":
        params.append(f'algs="{DPOP_ALGS}"')
    if error is not None:
        params.append(f'error="{error}"')
        params.append(f"error_description={quote_param(description)}")
    if scope is not None:
        params.append(f"scope={quote_param(scope, limit=1000)}")
    return Challenge(
        status=status,
        error=error,
        description=description,
        www_authenticate=f"{scheme} " + ", ".join(params),
    )


def bearer_challenge(exc: BearerError, realm: str) -> Challenge:
    """The answer to a missing or malformed credential, or a missing role or scope."""
    scope = None
    if isinstance(exc, InsufficientScope) and exc.missing_scopes:
        scope = " ".join(sorted(exc.required_scopes))
    return _challenge(realm, exc.status, exc.error, exc.message, scope, exc.scheme)


def invalid_token_challenge(message: str, realm: str) -> Challenge:
    """The answer to a rejected token (bad, expired, revoked…): 401 ``invalid_token``."""
    return _challenge(realm, 401, "invalid_token", message)


def unavailable_challenge(message: str, retry_after: int = UNAVAILABLE_RETRY_AFTER) -> Challenge:
    """The answer when the token cannot be checked right now: 503 with ``Retry-After``."""
    return Challenge(
        status=503,
        error="temporarily_unavailable",
        description=message,
        www_authenticate=None,
        retry_after=retry_after,
    )


def basic_challenge(realm: str) -> str:
    """The ``WWW-Authenticate`` value asking for HTTP Basic client credentials (RFC 7617)."""
    return f"Basic realm={quote_param(realm)}"
