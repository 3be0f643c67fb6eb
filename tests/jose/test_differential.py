"""Differential tests: whatever our verifier accepts, PyJWT and joserfc accept too.

Thousands of mutations of genuine tokens (bit flips, character substitutions,
truncations, segment swaps, header rewrites, re-signing with other keys, claim
rewrites signed by the real issuer) go through ``verify_jwt``; every token it
accepts must also pass ``jwt.decode`` and ``joserfc.jwt.decode`` plus
``JWTClaimsRegistry`` with the key our verifier used and the same issuer,
audience, required claims and leeway. The two libraries use the wall clock, so
every time claim here sits minutes away from any edge.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import string
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jwt as jose_jwt
from joserfc.jwk import JWKRegistry, OctKey
from joserfc.jws import JWSRegistry

from authmesh.jose import (
    ACCESS_TOKEN_CLAIMS,
    Key,
    KeySet,
    TokenRejected,
    VerifiedToken,
    VerifyPolicy,
    sign_jwt,
    verify_jwt,
)
from authmesh.jose.b64 import b64url_decode, b64url_encode

ISSUER = "https://auth.example.com"
AUDIENCE = "orders"
LEEWAY = 30
ALGS = ("EdDSA", "ES256", "RS256", "HS256")
PRINTABLE = string.printable[:95]

pytestmark = pytest.mark.filterwarnings(
    # joserfc flags EdDSA (RFC 9864 deprecates the polymorphic name); not our concern here.
    "ignore:EdDSA is deprecated via RFC 9864:joserfc.errors.SecurityWarning"
)


def b64(data: bytes) -> str:
    return b64url_encode(data).decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def unb64json(segment: str) -> Any:
    return json.loads(b64url_decode(segment.encode()))


# -- the three verifiers -------------------------------------------------------------------


def pyjwt_accepts(token: str | bytes, key: Key) -> bool:
    try:
        pyjwt.decode(
            token,
            key.public_key,
            algorithms=[key.alg],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY,
            options={"require": sorted(ACCESS_TOKEN_CLAIMS)},
        )
    except pyjwt.PyJWTError:
        return False
    return True


def _joserfc_key(key: Key) -> Any:
    if key.is_symmetric:
        return OctKey.import_key(key.public_key)
    return JWKRegistry.import_key(key.to_jwk())


def joserfc_accepts(token: str | bytes, key: Key) -> bool:
    # joserfc refuses header members outside its registry by default; RFC 7515 §4 says
    # members that are not understood are ignored, as we (and PyJWT) do.
    registry = JWSRegistry(algorithms=[key.alg], strict_check_header=False)
    try:
        decoded = jose_jwt.decode(token, _joserfc_key(key), registry=registry)
        options: dict[str, Any] = {name: {"essential": True} for name in ACCESS_TOKEN_CLAIMS}
        options["iss"] = {"essential": True, "value": ISSUER}
        options["aud"] = {"essential": True, "value": AUDIENCE}
        jose_jwt.JWTClaimsRegistry(now=int(time.time()), leeway=LEEWAY, **options).validate(
            decoded.claims
        )
    except Exception:  # JoseError, or whatever else it raises: either way, not accepted
        return False
    return True


@dataclass
class Tally:
    """What the run saw, so that a vacuous run (nothing accepted) fails too."""

    tried: int = 0
    accepted: list[tuple[str, str | bytes]] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)


def differential(
    kind: str, token: str | bytes, keys: KeySet, policy: VerifyPolicy, tally: Tally
) -> None:
    tally.tried += 1
    try:
        verified: VerifiedToken = verify_jwt(token, keys, policy)
    except TokenRejected:
        return
    tally.accepted.append((kind, token))
    key = keys.get(verified.kid)
    assert key is not None and key.alg == verified.alg
    for name, accepts in (("PyJWT", pyjwt_accepts), ("joserfc", joserfc_accepts)):
        if not accepts(token, key):
            tally.disagreements.append(f"{kind}: {name} rejects {token!r}")


# -- the world: real keys, an attacker, genuine tokens -------------------------------------


@pytest.fixture(scope="module")
def world(real_keys: dict[str, Key], attacker_keys: dict[str, Key]) -> World:
    return World(real_keys, attacker_keys, int(time.time()))


@dataclass(frozen=True)
class World:
    real: dict[str, Key]
    attacker: dict[str, Key]
    now: int

    @property
    def trusted(self) -> KeySet:
        return KeySet(
            [k.public() for a, k in self.real.items() if a != "HS256"] + [self.real["HS256"]]
        )

    @property
    def policy(self) -> VerifyPolicy:
        return VerifyPolicy.for_access_tokens(issuer=ISSUER, audience=AUDIENCE, leeway=LEEWAY)

    def claims(self, **changes: Any) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "user-42",
            "aud": AUDIENCE,
            "exp": self.now + 600,
            "iat": self.now - 60,
            "nbf": self.now - 60,
            "jti": "7f1c0e",
            "client_id": "web",
            "scope": "orders:read orders:write",
            "roles": ["customer"],
            "sid": "s-1",
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not DROP}

    def header(self, key: Key, **changes: Any) -> dict[str, Any]:
        header: dict[str, Any] = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
        header.update(changes)
        return {k: v for k, v in header.items() if v is not DROP}

    def genuine(self, alg: str) -> list[str]:
        key = self.real[alg]
        return [
            sign_jwt(self.claims(), key, typ="at+jwt"),
            sign_jwt(self.claims(aud=["billing", AUDIENCE], sub="ünïcødé ✓"), key, typ="at+jwt"),
        ]


DROP = object()


def sign_raw(header: dict[str, Any] | str, payload: dict[str, Any] | str, signer: Any) -> str:
    """Sign exact header/payload segments (given as objects or ready-made segments)."""
    h = header if isinstance(header, str) else b64json(header)
    p = payload if isinstance(payload, str) else b64json(payload)
    data = f"{h}.{p}".encode()
    signature = signer.sign(data) if isinstance(signer, Key) else signer(data)
    return f"{h}.{p}.{b64(signature)}"


def hmac_keyed_with(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda data: hmac.digest(secret, data, hashlib.sha256)


# -- mutation generators -------------------------------------------------------------------


def bit_flips(token: str, rng: random.Random, count: int) -> Iterator[bytes]:
    raw = token.encode()
    for _ in range(count):
        mutant = bytearray(raw)
        mutant[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        yield bytes(mutant)


def substitutions(token: str, rng: random.Random, count: int) -> Iterator[str]:
    for _ in range(count):
        at = rng.randrange(len(token))
        char = rng.choice(PRINTABLE.replace(token[at], ""))
        yield token[:at] + char + token[at + 1 :]


def truncations(token: str) -> Iterator[str]:
    for end in range(0, len(token), 5):
        yield token[:end]
    for cut in range(1, 9):
        yield token[:-cut]
        yield token[cut:]


def segment_swaps(token: str, others: list[str]) -> Iterator[str]:
    h, p, s = token.split(".")
    yield from (f"{p}.{h}.{s}", f"{h}.{s}.{p}", f"{s}.{p}.{h}", f"{h}.{p}.{p}", f"{h}.{h}.{s}")
    yield from (f"{h}.{p}", f"{h}.{p}.{s}.{s}", f"{h}..{s}", f".{p}.{s}", f"{h}.{p}.")
    for other in others:
        oh, op, os_ = other.split(".")
        yield from (f"{oh}.{p}.{s}", f"{h}.{op}.{s}", f"{h}.{p}.{os_}", f"{oh}.{op}.{s}")


def header_rewrites(world: World, key: Key) -> Iterator[dict[str, Any]]:
    """Headers an attacker (or a careless issuer) would write for ``key``'s tokens."""
    for alg in (*ALGS, "none", "None", "NONE", "HS512", "RS512", "PS256", "ES384", ""):
        yield world.header(key, alg=alg)
    for other in (*world.real.values(), *world.attacker.values()):
        yield world.header(key, kid=other.kid)
        yield world.header(key, alg=other.alg, kid=other.kid)
    for kid in (DROP, None, "", 0, [key.kid], key.kid.upper(), key.kid + " ", "../../dev/null"):
        yield world.header(key, kid=kid)
    for typ in (DROP, "JWT", "jwt", "AT+JWT", "application/at+jwt", "at+jwt ", "id_token", 1):
        yield world.header(key, typ=typ)
    yield world.header(key, jku="https://attacker.example/jwks.json")
    yield world.header(key, x5u="https://attacker.example/cert.pem")
    yield world.header(key, jwk=world.attacker[key.alg].to_jwk(private=key.is_symmetric))
    yield world.header(key, x5c=["MIIB"])
    yield world.header(key, crit=["exp"], exp=1)
    yield world.header(key, crit=["b64"], b64=False)
    yield world.header(key, b64=False)
    yield world.header(key, b64=True)
    yield world.header(key, cty="JWT")
    yield world.header(key, cty=1)
    yield world.header(key, x5t="abc")
    yield world.header(key, x5t=1)
    yield world.header(key, extension="value")


def claim_rewrites(world: World) -> Iterator[dict[str, Any]]:
    now = world.now
    yield world.claims(aud=[AUDIENCE])
    yield world.claims(aud=["billing", AUDIENCE, "x"])
    yield world.claims(aud="billing")
    yield world.claims(aud=[])
    yield world.claims(aud=[AUDIENCE, 1])
    yield world.claims(iss="https://attacker.example")
    yield world.claims(iss=ISSUER + "/")
    yield world.claims(exp=now - 600)
    yield world.claims(exp=now + 86_400)
    yield world.claims(exp=now + 600.5)
    yield world.claims(exp=str(now + 600))
    yield world.claims(exp=True)
    yield world.claims(exp=None)
    yield world.claims(exp=DROP)
    yield world.claims(nbf=now + 600, exp=now + 1200)
    yield world.claims(nbf=DROP)
    yield world.claims(iat=now + 600, exp=now + 1200)
    yield world.claims(iat=now - 86_400)
    yield world.claims(iat="yesterday")
    yield world.claims(sub=42)
    yield world.claims(sub=DROP)
    yield world.claims(jti=DROP)
    yield world.claims(client_id=DROP)
    yield world.claims(jti=7)
    yield world.claims(scope=["orders:read"])
    yield world.claims(roles=["admin"], extra={"nested": [1, 2.5, None, "é"]})
    yield world.claims(**{"http://example.com/is_root": True})


def mutations(world: World, alg: str, seed: int) -> Iterator[tuple[str, str | bytes]]:
    rng = random.Random(seed)
    key = world.real[alg]
    others = [t for a in ALGS if a != alg for t in world.genuine(a)[:1]]
    for token in world.genuine(alg):
        yield "genuine", token
        yield from (("bit-flip", m) for m in bit_flips(token, rng, 600))
        yield from (("substitution", m) for m in substitutions(token, rng, 600))
        yield from (("truncation", m) for m in truncations(token))
        yield from (("segment-swap", m) for m in segment_swaps(token, others))
        h, p, s = token.split(".")
        payload = unb64json(p)
        for header in header_rewrites(world, key):
            yield "header-rewrite-old-signature", f"{b64json(header)}.{p}.{s}"
            yield "header-rewrite-resigned", sign_raw(header, p, key)
            yield "header-rewrite-attacker", sign_raw(header, p, world.attacker[alg])
        for victim in world.real.values():
            if not victim.is_symmetric:
                confused = world.header(key, alg="HS256", kid=victim.kid)
                yield "hmac-confusion", sign_raw(confused, p, hmac_keyed_with(victim.to_pem()))
        for signer in (*world.real.values(), *world.attacker.values()):
            yield "resigned-other-key", sign_raw(world.header(signer), p, signer)
            yield "resigned-other-key-kept-header", sign_raw(h, p, signer)
        for claims in claim_rewrites(world):
            yield "claims-resigned", sign_raw(h, claims, key)
            yield "claims-old-signature", f"{h}.{b64json(claims)}.{s}"
        yield (
            "claims-duplicate-exp",
            sign_raw(
                h,
                b64(json.dumps(payload).encode()[:-1] + f',"exp":{world.now - 600}}}'.encode()),
                key,
            ),
        )


@pytest.mark.parametrize("alg", ALGS)
def test_whatever_we_accept_pyjwt_and_joserfc_accept(alg: str, world: World) -> None:
    tally = Tally()
    keys, policy = world.trusted, world.policy
    for kind, token in mutations(world, alg, seed=ALGS.index(alg)):
        differential(kind, token, keys, policy, tally)
    assert tally.disagreements == []
    # Not vacuous: thousands tried, and the genuine and legitimately re-signed ones passed.
    assert tally.tried > 3000
    kinds = {kind for kind, _ in tally.accepted}
    assert {"genuine", "header-rewrite-resigned", "resigned-other-key"} <= kinds
    assert "claims-resigned" in kinds
    assert not kinds & {"bit-flip", "header-rewrite-attacker", "hmac-confusion"}


# -- interoperability of genuine tokens ------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_our_tokens_verify_with_pyjwt_and_joserfc(alg: str, world: World) -> None:
    key = world.real[alg]
    verifier = key if key.is_symmetric else key.public()
    for token in world.genuine(alg):
        assert pyjwt_accepts(token, verifier)
        assert joserfc_accepts(token, verifier)
        assert pyjwt.get_unverified_header(token) == {"alg": alg, "kid": key.kid, "typ": "at+jwt"}
        claims = pyjwt.decode(
            token, verifier.public_key, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER
        )
        assert claims == verify_jwt(token, world.trusted, world.policy).claims


@pytest.mark.parametrize("alg", ALGS)
def test_pyjwt_and_joserfc_tokens_verify_with_ours(alg: str, world: World) -> None:
    key = world.real[alg]
    header = {"typ": "at+jwt", "kid": key.kid}
    signing_key: Any = key.public_key if key.is_symmetric else _private(key)
    by_pyjwt = pyjwt.encode(world.claims(), signing_key, algorithm=alg, headers=header)
    jose_key = (
        _joserfc_key(key) if key.is_symmetric else JWKRegistry.import_key(key.to_jwk(private=True))
    )
    by_joserfc = jose_jwt.encode({"alg": alg, **header}, world.claims(), jose_key, algorithms=[alg])
    for token in (by_pyjwt, by_joserfc):
        verified = verify_jwt(token, world.trusted, world.policy)
        assert verified.claims == world.claims()
        assert verified.kid == key.kid


def _private(key: Key) -> Any:
    return serialization.load_pem_private_key(key.to_pem(private=True), password=None)
