"""Property tests: round trips of random claim sets, and no changed token ever passes."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from authmesh.jose import (
    FORBIDDEN_HEADERS,
    AlgNotAllowed,
    ForbiddenHeader,
    Key,
    KeySet,
    MalformedToken,
    TokenRejected,
    UnknownKid,
    UnsupportedCritical,
    VerifyPolicy,
    WrongType,
    sign_jwt,
    verify_jws,
    verify_jwt,
)
from authmesh.jose.b64 import b64url_decode, b64url_encode

NOW = 1_700_000_000
ALGS = ("EdDSA", "ES256", "RS256", "HS256")
PRINTABLE = string.printable[:95]
REGISTERED = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "sid", "scope"}


def examples(count: int) -> settings:
    """Moderate example counts: the whole tests/jose run stays well under a minute."""
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Unicode without lone surrogates (not encodable as UTF-8, so not JSON text).
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)
extra_claims = st.dictionaries(texts.filter(lambda k: k not in REGISTERED), json_values, max_size=6)


@st.composite
def claim_sets(draw: st.DrawFn) -> dict[str, Any]:
    """A valid access-token claim set at NOW, with random strings and extra claims."""
    claims = draw(extra_claims)
    iat = NOW - draw(st.integers(0, 3600))
    claims.update(
        iss=draw(texts),
        sub=draw(texts),
        aud=draw(texts | st.lists(texts, min_size=1, max_size=3)),
        exp=NOW + draw(st.integers(1, 10**6) | st.floats(1, 10**6)),
        iat=iat,
        nbf=draw(st.sampled_from([iat, NOW])),
        jti=draw(texts),
        client_id=draw(texts),
        scope=" ".join(draw(st.lists(texts, max_size=3))),
    )
    return claims


def policy_for(claims: dict[str, Any]) -> VerifyPolicy:
    aud = claims["aud"]
    audience = frozenset([aud] if isinstance(aud, str) else aud[-1:])
    return VerifyPolicy.for_access_tokens(issuer=claims["iss"], audience=audience, leeway=0)


def at_now() -> float:
    return float(NOW)


@pytest.mark.parametrize("alg", ALGS)
@examples(40)
@given(claims=claim_sets())
def test_sign_then_verify_round_trips(
    alg: str, claims: dict[str, Any], real_keys: dict[str, Key], trusted: KeySet
) -> None:
    token = sign_jwt(claims, real_keys[alg], typ="at+jwt")
    verified = verify_jwt(token, trusted, policy_for(claims), clock=at_now)
    assert verified.claims == claims
    assert (verified.alg, verified.kid) == (alg, real_keys[alg].kid)


@pytest.mark.parametrize("alg", ALGS)
@examples(150)
@given(claims=claim_sets(), data=st.data())
def test_any_single_character_change_is_rejected(
    alg: str,
    claims: dict[str, Any],
    data: st.DataObject,
    real_keys: dict[str, Key],
    trusted: KeySet,
) -> None:
    token = sign_jwt(claims, real_keys[alg], typ="at+jwt")
    policy = policy_for(claims)
    position = data.draw(st.integers(0, len(token) - 1), label="position")
    char = data.draw(st.sampled_from(PRINTABLE).filter(lambda c: c != token[position]))
    mutant = token[:position] + char + token[position + 1 :]
    with pytest.raises(TokenRejected):
        verify_jwt(mutant, trusted, policy, clock=at_now)


@examples(300)
@given(token=st.text(max_size=300) | st.binary(max_size=300))
def test_arbitrary_input_is_a_clean_rejection(token: str | bytes, trusted: KeySet) -> None:
    """Whatever arrives, the answer is a TokenRejected, never another exception."""
    with pytest.raises(TokenRejected):
        verify_jwt(token, trusted, VerifyPolicy(types=None), clock=at_now)


base64url = st.text(alphabet=string.ascii_letters + string.digits + "-_", max_size=120)


@examples(300)
@given(parts=st.lists(base64url | st.just(""), min_size=1, max_size=5))
def test_arbitrary_base64url_segments_are_a_clean_rejection(
    parts: list[str], trusted: KeySet
) -> None:
    with pytest.raises(TokenRejected):
        verify_jwt(".".join(parts), trusted, VerifyPolicy(types=None), clock=at_now)


@examples(300)
@given(data=st.binary(max_size=64))
def test_base64url_is_strict_and_canonical(data: bytes) -> None:
    encoded = b64url_encode(data)
    assert b64url_decode(encoded) == data
    assert b"=" not in encoded and b"+" not in encoded and b"/" not in encoded
    # Exactly one spelling decodes to these bytes: every other last character fails
    # or decodes to something else.
    if encoded:
        for char in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_":
            if char == encoded[-1]:
                continue
            try:
                other = b64url_decode(encoded[:-1] + bytes([char]))
            except ValueError:
                continue
            assert other != data


# -- a model of the header rules, checked on random headers signed with the real key ------

ALG_VALUES = st.sampled_from(["EdDSA", "ES256", "none", "None", "HS512", "", "eddsa"]) | st.none()
TYP_VALUES = st.sampled_from(["at+jwt", "AT+JWT", "application/at+jwt", "JWT", "", "jwt"])
EXTRA_MEMBERS = st.dictionaries(
    st.sampled_from([*sorted(FORBIDDEN_HEADERS), "crit", "cty", "b64", "x5t", "zip", "x"]) | texts,
    json_values,
    max_size=3,
)


@st.composite
def headers(draw: st.DrawFn, kid: str) -> dict[str, Any]:
    header: dict[str, Any] = {"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}
    # Each rule is broken one time in four, so that all of them (and none) get drawn.
    if draw(st.integers(0, 3)) == 0:
        header["alg"] = draw(ALG_VALUES)
    if draw(st.integers(0, 3)) == 0:
        header["typ"] = draw(TYP_VALUES | json_values)
    if draw(st.integers(0, 3)) == 0:
        header["kid"] = draw(st.sampled_from([kid, kid.lower(), "other", ""]) | json_values)
    if draw(st.integers(0, 3)) == 0:
        header.pop(draw(st.sampled_from(["alg", "typ", "kid"])))
    if draw(st.booleans()):
        header.update(draw(EXTRA_MEMBERS))
    return header


def expected_rejection(header: dict[str, Any], key: Key) -> type[TokenRejected] | None:
    """What the token rules of docs/security.md say about ``header`` (signed by ``key``)."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none" or alg not in {"EdDSA", "ES256"}:
        return AlgNotAllowed
    if FORBIDDEN_HEADERS & header.keys():
        return ForbiddenHeader
    if "crit" in header:
        return UnsupportedCritical
    if "b64" in header and header["b64"] is not True:
        return UnsupportedCritical
    if any(not isinstance(header.get(name, ""), str) for name in ("cty", "x5t", "x5t#S256")):
        return MalformedToken
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in {"at+jwt", "application/at+jwt"}:
        return WrongType
    kid = header.get("kid")
    if kid is not None and kid != key.kid:
        return UnknownKid
    if alg != key.alg:
        return AlgNotAllowed
    return None


@examples(300)
@given(data=st.data())
def test_header_rules_match_their_model(data: st.DataObject, real_keys: dict[str, Key]) -> None:
    key = real_keys["EdDSA"]
    header = data.draw(headers(key.kid), label="header")
    signing_input = (
        b64url_encode(_json(header)) + b"." + b64url_encode(b'{"sub":"x","exp":1700000300}')
    )
    token = signing_input + b"." + b64url_encode(key.sign(signing_input))
    policy = VerifyPolicy(algorithms=frozenset({"EdDSA", "ES256"}))
    expected = expected_rejection(header, key)
    event("accepted" if expected is None else expected.reason)
    if expected is None:
        assert verify_jws(token, KeySet([key.public()]), policy).header == header
    else:
        with pytest.raises(TokenRejected) as info:
            verify_jws(token, KeySet([key.public()]), policy)
        assert type(info.value) is expected


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
