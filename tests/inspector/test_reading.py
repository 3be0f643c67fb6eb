"""authmesh.inspector: lenient decoding, structural problems and sensitive claims."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from typing import Any

import pytest

import authmesh.inspector
from authmesh.inspector import Inspection, inspect_token
from authmesh.jose.b64 import b64url_encode

MODULES = sorted(
    name
    for _, name, _ in pkgutil.iter_modules(authmesh.inspector.__path__, "authmesh.inspector.")
    if not name.rsplit(".", 1)[1].startswith("_")
)


def segment(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return b64url_encode(raw).decode()


def token(header: Any = None, payload: Any = None, signature: bytes = b"s" * 64) -> str:
    header = {"alg": "EdDSA", "kid": "k1", "typ": "at+jwt"} if header is None else header
    payload = {"sub": "alice", "exp": 1_800_000_000} if payload is None else payload
    return ".".join([segment(header), segment(payload), b64url_encode(signature).decode()])


def codes(seen: Inspection) -> list[str]:
    return [p.code for p in seen.problems]


def test_the_package_exports_exactly_all() -> None:
    public = {
        name
        for name, value in vars(authmesh.inspector).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public == set(authmesh.inspector.__all__)


@pytest.mark.parametrize("module_name", MODULES)
def test_all_names_every_public_definition(module_name: str) -> None:
    module = importlib.import_module(module_name)
    defined = {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_") and getattr(obj, "__module__", None) == module.__name__
    }
    assert all(hasattr(module, name) for name in module.__all__)
    assert len(module.__all__) == len(set(module.__all__))
    exported = {
        name
        for name in module.__all__
        if getattr(getattr(module, name), "__module__", None) == module.__name__
    }
    assert defined == exported


def test_a_sound_token_decodes_without_problems() -> None:
    seen = inspect_token(token())
    assert seen.decoded
    assert seen.header == {"alg": "EdDSA", "kid": "k1", "typ": "at+jwt"}
    assert seen.payload == {"sub": "alice", "exp": 1_800_000_000}
    assert seen.signature_length == 64
    assert seen.segments == 3
    assert seen.problems == ()
    assert seen.sensitive == ()


@pytest.mark.parametrize(
    ("text", "code", "decoded"),
    [
        ("", "empty", False),
        ("abc", "not_three_parts", False),
        (token().rsplit(".", 1)[0], "not_three_parts", True),
        (token() + ".x.y", "not_three_parts", False),
        ("a.b.c.d.e", "not_three_parts", False),
        ("Bearer " + token(), "bearer_prefix", True),
        (token()[:20] + "\n" + token()[20:], "whitespace", True),
        (token() + "é", "non_ascii", True),
        ("x" * 9000, "too_large", False),
    ],
    ids=[
        "empty",
        "one-part",
        "two-parts",
        "five-parts-jwe",
        "jwe-garbage",
        "bearer",
        "newline",
        "non-ascii",
        "too-large",
    ],
)
def test_token_level_problems(text: str, code: str, decoded: bool) -> None:
    seen = inspect_token(text)
    assert code in codes(seen)
    assert seen.decoded is decoded


def test_a_jwe_is_named_as_such() -> None:
    seen = inspect_token(
        ".".join([segment({"alg": "RSA-OAEP", "enc": "A256GCM"}), "a", "b", "c", "d"])
    )
    assert "encrypted JWE" in seen.problems[0].message
    assert seen.header == {"alg": "RSA-OAEP", "enc": "A256GCM"}
    assert seen.payload is None


def test_padded_base64_is_reported_but_still_shown() -> None:
    header, payload, signature = token().split(".")
    padded = header + "=" * (-len(header) % 4 or 4)
    seen = inspect_token(".".join([padded, payload, signature]))
    assert codes(seen) == ["bad_base64"]
    assert seen.problems[0].part == "header"
    assert "leniently" in seen.problems[0].message
    assert seen.header is not None and seen.header["alg"] == "EdDSA"


@pytest.mark.parametrize(
    ("payload_segment", "code"),
    [
        ("!!!!", "bad_base64"),
        (segment(b"\xff\xfe"), "not_utf8"),
        (segment(b"{not json"), "not_json"),
        (segment([1, 2]), "not_object"),
        (segment(b'{"a": 1, "a": 2}'), "duplicate_member"),
        (segment(b'{"exp": NaN}'), "not_json_constant"),
        (segment(b'{"exp": 1e400}'), "number_out_of_range"),
    ],
    ids=["bad-base64", "not-utf8", "not-json", "array", "duplicate", "nan", "huge-float"],
)
def test_payload_problems(payload_segment: str, code: str) -> None:
    header, _, signature = token().split(".")
    seen = inspect_token(".".join([header, payload_segment, signature]))
    assert code in codes(seen)
    assert all(p.part == "payload" for p in seen.problems if p.code == code)
    assert seen.header is not None  # a broken payload does not hide the header


def test_non_object_payload_keeps_its_text() -> None:
    header, _, signature = token().split(".")
    seen = inspect_token(".".join([header, segment(b"hello"), signature]))
    assert seen.payload is None
    assert seen.payload_text == "hello"
    assert not seen.decoded


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ({"alg": "none", "typ": "JWT"}, "alg_none"),
        ({"alg": "NoNe"}, "alg_none"),
        ({"typ": "JWT"}, "alg_missing"),
        ({"alg": "HS512"}, "alg_unsupported"),
        ({"alg": "RS256", "jku": "https://evil.example/jwks"}, "forbidden_header"),
        ({"alg": "RS256", "x5u": "https://evil.example/cert"}, "forbidden_header"),
        ({"alg": "RS256", "jwk": {"kty": "oct", "k": "AAAA"}}, "forbidden_header"),
        ({"alg": "RS256", "x5c": ["MIIB"]}, "forbidden_header"),
        ({"alg": "EdDSA", "crit": ["exp"], "exp": 1}, "crit"),
        ({"alg": "EdDSA", "kid": ""}, "bad_kid"),
        ({"alg": "EdDSA", "kid": 7}, "bad_kid"),
    ],
    ids=[
        "alg-none",
        "alg-none-mixed-case",
        "no-alg",
        "alg-unsupported",
        "jku",
        "x5u",
        "jwk",
        "x5c",
        "crit",
        "empty-kid",
        "numeric-kid",
    ],
)
def test_header_problems(header: dict[str, Any], code: str) -> None:
    seen = inspect_token(token(header=header))
    assert code in codes(seen)
    assert seen.decoded  # structural problems never hide what is there


def test_an_unsigned_token_has_no_signature() -> None:
    seen = inspect_token(token(header={"alg": "none"}).rsplit(".", 1)[0] + ".")
    assert {"alg_none", "no_signature"} <= set(codes(seen))
    assert seen.signature_length is None


def test_a_der_encoded_es256_signature_is_spotted() -> None:
    seen = inspect_token(token(header={"alg": "ES256"}, signature=b"0" * 71))
    assert codes(seen) == ["signature_length"]
    assert "DER" in seen.problems[0].message


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"exp": "tomorrow"}, "bad_numeric_date"),
        ({"iat": True}, "bad_numeric_date"),
        ({"sub": 42}, "bad_claim_type"),
        ({"aud": []}, "bad_claim_type"),
    ],
    ids=["exp-string", "iat-bool", "sub-number", "aud-empty"],
)
def test_claim_type_problems(payload: dict[str, Any], code: str) -> None:
    assert code in codes(inspect_token(token(payload=payload)))


_PEM = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI...\n-----END PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("payload", "path", "category"),
    [
        ({"password": "hunter2"}, "password", "secret"),
        ({"user_pwd": "hunter2"}, "user_pwd", "secret"),
        ({"client_secret": "s3cr3t"}, "client_secret", "secret"),
        ({"api_key": "AKIA..."}, "api_key", "secret"),
        ({"apiKey": "AKIA..."}, "apiKey", "secret"),
        ({"refresh_token": "opaque"}, "refresh_token", "secret"),
        ({"upstream": "eyJhbGciOiJI.eyJzdWIiOiIx.c2ln"}, "upstream", "secret"),
        ({"ssn": "123-45-6789"}, "ssn", "government id"),
        ({"ref": "123-45-6789"}, "ref", "government id"),
        ({"credit_card": "4111111111111111"}, "credit_card", "payment card"),
        ({"note": "4111 1111 1111 1111"}, "note", "payment card"),
        ({"cvv": 123}, "cvv", "payment card"),
        ({"signing": _PEM}, "signing", "private key"),
        ({"private_key": "MC4CAQAw"}, "private_key", "private key"),
        (
            {"cnf": {"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "x", "d": "d"}}},
            "cnf.jwk",
            "private key",
        ),
        ({"email": "alice@example.com"}, "email", "personal data"),
        ({"sub": "alice@example.com"}, "sub", "personal data"),
        (
            {"profile": {"phone_number": "+33 6 00 00 00 00"}},
            "profile.phone_number",
            "personal data",
        ),
        ({"contacts": ["bob@example.com"]}, "contacts[0]", "personal data"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_sensitive_claims_are_named(payload: dict[str, Any], path: str, category: str) -> None:
    found = inspect_token(token(payload=payload)).sensitive
    assert [(c.location, c.path, c.category) for c in found] == [("payload", path, category)]
    assert found[0].message


@pytest.mark.parametrize(
    "payload",
    [
        {"sub": "alice", "roles": ["admin"], "scope": "orders:read", "jti": "8c1f"},
        {"email_verified": True, "password_changed_at": 1_700_000_000},
        {"secret_rotation": False, "jti": "4111111111111111"},
        {"password": ""},
    ],
    ids=["registered-claims", "flags-and-dates", "undelimited-digits", "empty"],
)
def test_ordinary_claims_are_not_flagged(payload: dict[str, Any]) -> None:
    assert inspect_token(token(payload=payload)).sensitive == ()


def test_a_private_key_embedded_in_the_header_is_flagged() -> None:
    header = {"alg": "EdDSA", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": "x", "d": "d"}}
    found = inspect_token(token(header=header)).sensitive
    assert [(c.location, c.path, c.category) for c in found] == [("header", "jwk", "private key")]
