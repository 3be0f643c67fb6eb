"""DPoP at a service (RFC 9449 §7), and the client side for httpx.

A token the auth server bound to a key (``cnf.jkt``) is accepted only as
``Authorization: DPoP <token>`` with a ``DPoP`` proof signed by that key, for
this request's method and URL, naming this token (``ath``), fresh and never
seen before. A bound token sent as a bearer token is refused: that is the
point of binding it. Every framework adapter calls :meth:`ProofChecker.check`.

Calling a DPoP-protected service: :class:`DPoPAuth` sends a token with a fresh
proof on every request; :class:`~authmesh.service.ClientCredentialsAuth` takes
``dpop_key=`` to get and send bound service tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence

import httpx

from authmesh.dpop import ReplayCache, checked_proof, make_proof
from authmesh.errors import DpopRequired, InvalidDpopProof
from authmesh.jose import Key
from authmesh.jose.policy import Clock
from authmesh.service.principal import Principal

__all__ = ["DPoPAuth", "ProofChecker"]


class ProofChecker:
    """Checks how a verified token was presented, and remembers the proofs it accepted.

    Args:
        max_age: how old a proof may be (its ``iat``), in seconds.
        leeway: clock difference allowed with the client.
        max_proofs: how many proofs to remember against replay (least recent go first).
        clock: wall-clock time.
    """

    def __init__(
        self,
        *,
        max_age: float = 60.0,
        leeway: float = 5.0,
        max_proofs: int = 100_000,
        clock: Clock = time.time,
    ) -> None:
        self.max_age = max_age
        self.leeway = leeway
        self._clock = clock
        self.replay = ReplayCache(max_entries=max_proofs, clock=clock)

    def check(
        self,
        principal: Principal,
        scheme: str,
        proofs: Sequence[str],
        method: str,
        url: Callable[[], str],
    ) -> None:
        """Demand what the token's binding demands of this request.

        ``url`` is called only when a proof has to be checked.

        Raises:
            DpopRequired: a bound token as a bearer token, or an unbound one as DPoP.
            InvalidDpopProof: the proof is missing, repeated, or fails a check.
        """
        bound = principal.dpop_jkt
        if scheme == "bearer":
            if bound is not None:
                raise DpopRequired()
            return
        if bound is None:
            raise DpopRequired("the token is not bound to a DPoP key: send it as a bearer token")
        if len(proofs) != 1 or "," in proofs[0]:
            raise InvalidDpopProof("send exactly one DPoP proof")
        jkt, _, _ = checked_proof(
            proofs[0],
            method,
            url(),
            self._clock(),
            principal.token,
            self.max_age,
            self.leeway,
            self.replay,
        )
        if jkt != bound:
            raise InvalidDpopProof("the proof is signed by another key than the token is bound to")


class DPoPAuth(httpx.Auth):
    """Send ``token`` as ``DPoP <token>`` with a fresh proof by ``key`` on every request.

    ``token`` may be a callable returning the current token (e.g. after a refresh).
    """

    def __init__(self, token: str | Callable[[], str], key: Key) -> None:
        if not key.is_private or key.is_symmetric:
            raise ValueError("a DPoP key must be a private asymmetric key")
        self._token = token
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        token = self._token() if callable(self._token) else self._token
        request.headers["Authorization"] = f"DPoP {token}"
        request.headers["DPoP"] = make_proof(
            self._key, method=request.method, url=str(request.url), access_token=token
        )
        yield request
