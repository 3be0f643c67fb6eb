"""Bearer token usage over HTTP (RFC 6750), for every framework adapter.

:func:`parse_authorization` reads the ``Authorization`` header (§2.1) and
:func:`challenge_for` turns any authentication or authorization failure into
the one HTTP answer the adapters send (§3). Both follow :mod:`authmesh.rfc6750`,
which the auth server uses too: the table of answers and the quoting rules are
there.
"""

from __future__ import annotations

from authmesh.errors import BearerError
from authmesh.jose.errors import TokenRejected, VerifierUnavailable
from authmesh.rfc6750 import (
    Challenge,
    bearer_challenge,
    invalid_token_challenge,
    parse_authorization,
    quote_param,
    unavailable_challenge,
)

__all__ = ["Challenge", "challenge_for", "parse_authorization", "quote_param"]


def challenge_for(exc: TokenRejected | BearerError, realm: str) -> Challenge:
    """The RFC 6750 §3 answer to ``exc``.

    A :class:`VerifierUnavailable` (stale revocation feed, no signing keys yet)
    is not the token's fault: 503 with ``Retry-After``, not 401 ``invalid_token``.

    Raises:
        TypeError: ``exc`` is neither a token rejection nor a bearer error.
    """
    if isinstance(exc, VerifierUnavailable):
        return unavailable_challenge(exc.message)
    if isinstance(exc, TokenRejected):
        return invalid_token_challenge(exc.message, realm)
    if isinstance(exc, BearerError):
        return bearer_challenge(exc, realm)
    raise TypeError(f"not an authentication failure: {exc!r}")
