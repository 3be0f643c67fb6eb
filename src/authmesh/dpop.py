"""DPoP (RFC 9449): proofs of possession that bind an access token to the client's key.

A client signs a small JWT, the *proof*, for each request with a key of its
own, and sends it in the ``DPoP`` header. The auth server writes the key's
thumbprint into the tokens it issues (``cnf.jkt``); a service then accepts such
a token only with a fresh proof by that key, for that method and URL, naming
that token (``ath``). A stolen token alone is useless.

This module imports nothing of the server or the SDK: both check proofs here.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

from authmesh.errors import InvalidDpopProof, InvalidKey
from authmesh.jose.b64 import b64url_decode, b64url_encode
from authmesh.jose.errors import MalformedToken
from authmesh.jose.jws import decode_flat_segment, decode_segment
from authmesh.jose.keys import Key

__all__ = [
    "ALGORITHMS",
    "DpopProof",
    "ReplayCache",
    "access_token_hash",
    "checked_proof",
    "make_proof",
    "normalize_htu",
    "verify_proof",
]

#: Asymmetric algorithms only: a proof's key is public, an HMAC proof proves nothing.
ALGORITHMS = ("EdDSA", "ES256", "RS256")
PROOF_TYPE = "dpop+jwt"
#: JWK members of a private key; a proof must carry the public key only (§4.2).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k", "oth"})
_MAX_PROOF = 8192
_MAX_JTI = 256


class DpopProof(NamedTuple):
    """A proof that passed every check.

    A named tuple, not a frozen dataclass: it is made once per request, and a
    frozen dataclass's ``__init__`` (``object.__setattr__`` per field) costs more
    than all the claim checks together.
    """

    jkt: str
    """The RFC 7638 thumbprint of the proof's key (what ``cnf.jkt`` must equal)."""
    jti: str
    iat: float


def access_token_hash(access_token: str) -> str:
    """``ath``: base64url(SHA-256(token)) (§4.2)."""
    return b64url_encode(hashlib.sha256(access_token.encode("ascii")).digest()).decode()


def normalize_htu(url: str) -> str:
    """The URL a proof names, compared without query and fragment (§4.3), case-normalized."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", "", ""))


class ReplayCache:
    """The proofs seen within their acceptance window, to refuse each a second time (§11.1).

    Bounded: past ``max_entries`` the oldest entries go first. Thread-safe without a
    lock on the way of a proof: recording a key is one atomic ``dict.setdefault``
    (under the GIL) of an entry object no other call has, so of two requests
    carrying one proof exactly one sees its own entry come back.
    """

    def __init__(self, *, max_entries: int = 100_000, clock: Any = time.time) -> None:
        self._seen: dict[str, tuple[float, str]] = {}
        # The same (expires_at, key) entries in the order recorded: what to drop
        # first, without scanning the dict (deleting from the front of a dict leaves
        # holes behind).
        self._order: deque[tuple[float, str]] = deque()
        self._pruning = threading.Lock()
        self._max = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._seen)

    def first_use(self, key: str, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at``; whether it was not seen before."""
        entry = (expires_at, key)
        seen = self._seen
        if seen.setdefault(key, entry) is not entry:
            return False
        order = self._order
        order.append(entry)
        if len(seen) > self._max:
            # Full: the oldest goes, expired or not. ``popleft`` hands each entry to
            # one caller only, so racing callers drop distinct entries, no lock.
            try:
                seen.pop(order.popleft()[1], None)
            except IndexError:  # other callers emptied it meanwhile
                pass
        elif not len(order) & 0xFF:
            # Expired entries are dropped now and then, not on every proof: the
            # check of a proof should cost little more than its signature.
            self._prune()
        return True

    def _prune(self) -> None:
        # One pruner at a time; a request that finds one at work goes on its way.
        if not self._pruning.acquire(blocking=False):
            return
        try:
            now = self._clock()
            seen, order = self._seen, self._order
            while True:
                # Taken off atomically, then put back if it stays: a caller evicting
                # concurrently (above) can never take the same entry.
                try:
                    entry = order.popleft()
                except IndexError:
                    break
                if entry[0] > now and len(seen) <= self._max:
                    order.appendleft(entry)
                    break
                seen.pop(entry[1], None)
        finally:
            self._pruning.release()


def make_proof(
    key: Key,
    *,
    method: str,
    url: str,
    access_token: str | None = None,
    nonce: str | None = None,
    now: float | None = None,
) -> str:
    """A DPoP proof by ``key`` (private, asymmetric) for one request."""
    claims: dict[str, Any] = {
        "jti": str(uuid.uuid4()),
        "htm": method.upper(),
        "htu": normalize_htu(url),
        "iat": int(time.time() if now is None else now),
    }
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    if nonce is not None:
        claims["nonce"] = nonce
    public = key.public().to_jwk()
    for member in ("kid", "alg", "use"):
        public.pop(member, None)
    # Not sign_jwt: it rightly refuses a key in the header, which is what a proof is.
    header = {"typ": PROOF_TYPE, "alg": key.alg, "jwk": public}
    signing_input = _segment(header) + b"." + _segment(claims)
    return (signing_input + b"." + b64url_encode(key.sign(signing_input))).decode("ascii")


def _segment(obj: Mapping[str, Any]) -> bytes:
    return b64url_encode(json.dumps(obj, separators=(",", ":")).encode())


def verify_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: float,
    access_token: str | None = None,
    max_age: float = 60.0,
    leeway: float = 5.0,
    replay: ReplayCache | None = None,
    algorithms: tuple[str, ...] = ALGORITHMS,
) -> DpopProof:
    """Check a proof for a request of ``method`` to ``url`` (RFC 9449 §4.3).

    ``access_token`` is the token presented with it (a resource request), so the
    proof must name it in ``ath``; at the token endpoint there is none.

    Raises:
        InvalidDpopProof: any check fails; the message says which.
    """
    jkt, jti, iat = checked_proof(
        proof, method, url, now, access_token, max_age, leeway, replay, algorithms
    )
    return DpopProof(jkt, jti, iat)


def checked_proof(
    proof: str,
    method: str,
    url: str,
    now: float,
    access_token: str | None,
    max_age: float,
    leeway: float,
    replay: ReplayCache | None,
    algorithms: tuple[str, ...] = ALGORITHMS,
) -> tuple[str, str, float]:
    """:func:`verify_proof`'s checks, with positional arguments and a bare tuple.

    For the check on every request of a service, which needs only the ``jkt``:
    no keyword parsing and no :class:`DpopProof` to build.

    Returns:
        The proof's ``jkt``, ``jti`` and ``iat``.

    Raises:
        InvalidDpopProof: any check fails; the message says which.
    """
    # One function, not a few: on a proof's way each call costs as much as a check.
    if not proof or len(proof) > _MAX_PROOF:
        raise InvalidDpopProof("the DPoP header is not a compact JWT")
    parts = proof.encode("ascii", "replace").split(b".")
    if len(parts) != 3:
        raise InvalidDpopProof("the DPoP header is not a compact JWT")
    head, body, signature = parts
    header = _HEADERS.parsed.get(head)
    if header is None or header.alg not in algorithms:
        header = _HEADERS.parse(head, algorithms)
    try:
        claims = decode_flat_segment(body, what="payload")
        raw_signature = b64url_decode(signature)
    except (MalformedToken, ValueError):
        raise InvalidDpopProof("the proof is not valid base64url JSON") from None
    if not header.key.verify(head + b"." + body, raw_signature):
        raise InvalidDpopProof("the proof's signature is wrong")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= _MAX_JTI:
        raise InvalidDpopProof("the proof needs a jti")
    if claims.get("htm") != method.upper():
        raise InvalidDpopProof("the proof is for another HTTP method")
    htu = claims.get("htu")
    # A client names the URL as the service spells it nearly always: one string
    # comparison; normalizing both (urllib) only when they differ.
    if htu != url and not _same_url(htu, url):
        raise InvalidDpopProof("the proof is for another URL")
    iat = claims.get("iat")
    if not isinstance(iat, _NUMBER) or isinstance(iat, bool):
        raise InvalidDpopProof("the proof needs a numeric iat")
    if not now - max_age - leeway <= iat <= now + leeway:
        if iat > now + leeway:
            raise InvalidDpopProof("the proof is issued in the future")
        raise InvalidDpopProof("the proof is too old")
    if access_token is not None:
        ath = _TOKEN_HASHES.hashes.get(access_token) or _TOKEN_HASHES.of(access_token)
        if claims.get("ath") != ath:
            raise InvalidDpopProof("the proof does not name this access token (ath)")
    elif "ath" in claims:
        raise InvalidDpopProof("a proof for the token endpoint names no access token")
    jkt = header.jkt
    if replay is not None and not replay.first_use(f"{jkt}:{jti}", iat + max_age + leeway):
        raise InvalidDpopProof("the proof was used before")
    return jkt, jti, float(iat)


_NUMBER = (int, float)
# A client spells each URL of a service one way: urllib's parse once per spelling
# lately seen. Bounded (least recently used go first; a proof is at most 8 KiB, so
# at most a few MiB), and thread-safe.
_normalized = functools.lru_cache(maxsize=256)(normalize_htu)


def _same_url(htu: object, url: str) -> bool:
    if not isinstance(htu, str):
        return False
    try:
        return _normalized(htu) == _normalized(url)
    except ValueError:  # not a URL at all (a port that is no number, a broken IPv6 host)
        return False


class _TokenHashes:
    """``ath`` of the access tokens seen lately, by token.

    A client presents one token with many proofs, and a service's verified-token
    cache hands the very same string back each time: a dict lookup instead of a
    SHA-256 over the whole token per request. Bounded; the oldest go first.
    """

    def __init__(self, size: int = 4096) -> None:
        #: Read directly on a proof's way (one ``get``), :meth:`of` when missing.
        self.hashes: OrderedDict[str, str] = OrderedDict()
        self._size = size

    def of(self, access_token: str) -> str:
        found = self.hashes.get(access_token)
        if found is None:
            found = access_token_hash(access_token)
            self.hashes[access_token] = found
            if len(self.hashes) > self._size:
                try:
                    self.hashes.popitem(last=False)
                except KeyError:  # another thread emptied it meanwhile
                    pass
        return found


_TOKEN_HASHES = _TokenHashes()


@dataclass(frozen=True, slots=True)
class _Header:
    """A proof header that passed its checks, with its key imported once."""

    alg: str
    key: Key
    jkt: str


class _HeaderMemo:
    """Parsed proof headers by their encoded bytes.

    A client signs every proof with the same key, so every proof it sends has
    the same header segment: decoding it, importing the JWK and hashing its
    thumbprint once leaves the signature check as the cost of a proof. A lookup
    takes no lock (one atomic ``parsed.get``, a header found there still has its
    ``alg`` checked against the caller's); adding one does.
    """

    def __init__(self, size: int = 1024) -> None:
        self.parsed: OrderedDict[bytes, _Header] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def parse(self, segment: bytes, algorithms: tuple[str, ...]) -> _Header:
        """Check ``segment`` as a proof header for ``algorithms``, and remember it."""
        parsed = _parse_header(segment, algorithms)
        with self._lock:
            self.parsed[segment] = parsed
            if len(self.parsed) > self._size:
                self.parsed.popitem(last=False)
        return parsed


_HEADERS = _HeaderMemo()


def _parse_header(segment: bytes, algorithms: tuple[str, ...]) -> _Header:
    try:
        header = decode_segment(segment, what="header")
    except MalformedToken:
        raise InvalidDpopProof("the proof is not valid base64url JSON") from None
    if header.get("typ") != PROOF_TYPE:
        raise InvalidDpopProof("the proof's typ must be dpop+jwt")
    alg = header.get("alg")
    if alg not in algorithms:
        raise InvalidDpopProof(f"the proof's alg must be one of {', '.join(algorithms)}")
    jwk = header.get("jwk")
    if not isinstance(jwk, Mapping) or _PRIVATE_MEMBERS & set(jwk):
        raise InvalidDpopProof("the proof must carry its public key (jwk) and nothing private")
    if "crit" in header:
        raise InvalidDpopProof("the proof has critical header parameters")
    try:
        key = Key.from_jwk(jwk, alg=str(alg))
    except InvalidKey:
        raise InvalidDpopProof("the proof's jwk is not a usable public key") from None
    return _Header(alg=key.alg, key=key, jkt=key.thumbprint())
