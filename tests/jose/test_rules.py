"""One test per token security rule of docs/security.md (RFC 8725), one row per attack.

Each row builds the token an attacker would really send and names the exact
rejection class and reason code. Header rules run before the signature, so the
attacker signs with their own key; rules on encoded segments or claims are also
shown on tokens signed with the *real* key, so that the rule, not the signature,
is what rejects them.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from authmesh.errors import ConfigError, InvalidKey, OperatorError
from authmesh.jose import (
    ACCESS_TOKEN_CLAIMS,
    REASONS,
    AlgNotAllowed,
    BadSignature,
    ForbiddenHeader,
    InvalidClaim,
    IssuedInFuture,
    Key,
    KeySet,
    MalformedToken,
    MissingClaim,
    TokenExpired,
    TokenNotYetValid,
    TokenRejected,
    TokenTooLarge,
    UnknownKid,
    UnsupportedCritical,
    VerifyPolicy,
    WrongAudience,
    WrongIssuer,
    WrongType,
    errors,
    sign_jwt,
    verify_jws,
    verify_jwt,
)
from authmesh.jose.b64 import b64url_encode

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ISSUER = "https://auth.example.com"
AUDIENCE = "orders"
ALGS = ("EdDSA", "ES256", "RS256", "HS256")

Signer = Key | Callable[[bytes], bytes] | None
Forge = Callable[..., str]


@dataclass(frozen=True)
class Scene:
    """The world an attack is built in: the issuer's keys, the attacker's, a forge."""

    real: dict[str, Key]
    attacker: dict[str, Key]
    claims: Callable[..., dict[str, Any]]
    forge: Forge
    forge_raw: Forge
    now: int

    def header(
        self, key_alg: str = "EdDSA", *, drop: tuple[str, ...] = (), **changes: Any
    ) -> dict[str, Any]:
        """The header the issuer writes for its ``key_alg`` key, changed."""
        key = self.real[key_alg]
        header: dict[str, Any] = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
        header.update(changes)
        for name in drop:
            del header[name]
        return header

    def token(
        self,
        alg: str = "EdDSA",
        *,
        header: Mapping[str, Any] | bytes | None = None,
        claims: Mapping[str, Any] | bytes | None = None,
        signer: Signer | str = "real",
    ) -> str:
        """A token; ``signer`` is a key, a function, None, "real" or "attacker" (same alg)."""
        key: Signer
        if signer == "real":
            key = self.real[alg]
        elif signer == "attacker":
            key = self.attacker[alg]
        else:
            assert not isinstance(signer, str)
            key = signer
        return str(
            self.forge(
                self.header(alg) if header is None else header,
                self.claims() if claims is None else claims,
                key,
            )
        )

    def resign(self, header_b64: str, payload_b64: str, alg: str = "EdDSA") -> str:
        """Raw segments signed with the real key: only the encoding rule can reject them."""
        return str(self.forge_raw(header_b64, payload_b64, self.real[alg]))

    def segments(self, alg: str = "EdDSA") -> list[str]:
        return self.token(alg).split(".")


Build = Callable[[Scene], str | bytes]


@pytest.fixture
def scene(
    real_keys: dict[str, Key],
    attacker_keys: dict[str, Key],
    make_claims: Callable[..., dict[str, Any]],
    forge: Forge,
    forge_raw: Forge,
    clock: Callable[[], float],
) -> Scene:
    return Scene(real_keys, attacker_keys, make_claims, forge, forge_raw, int(clock()))


def rejection(
    token: str | bytes,
    keys: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
    verify: Callable[..., object] = verify_jwt,
) -> TokenRejected:
    with pytest.raises(TokenRejected) as info:
        if verify is verify_jwt:
            verify_jwt(token, keys, policy, clock=clock)
        else:
            verify(token, keys, policy)
    return info.value


def check(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> TokenRejected:
    exc = rejection(build(scene), trusted, policy, clock)
    assert type(exc) is expected, repr(exc)
    assert exc.reason == reason == expected.reason
    return exc


def b64(data: bytes) -> str:
    return b64url_encode(data).decode()


def hmac_with(secret: bytes) -> Callable[[bytes], bytes]:
    """An HMAC-SHA256 signer keyed with any bytes, as an attacker's script would be."""
    return lambda data: hmac.digest(secret, data, hashlib.sha256)


def row(build: Build, expected: type[TokenRejected], reason: str, id: str) -> Any:
    return pytest.param(build, expected, reason, id=id)


# -- the positive control: every row below starts from tokens like these -----------


@pytest.mark.parametrize("alg", ALGS)
def test_the_issuers_token_verifies(
    alg: str, scene: Scene, trusted: KeySet, policy: VerifyPolicy, clock: Callable[[], float]
) -> None:
    verified = verify_jwt(scene.token(alg), trusted, policy, clock=clock)
    assert verified.claims == scene.claims()
    assert (verified.alg, verified.kid) == (alg, scene.real[alg].kid)


@pytest.mark.parametrize("alg", ALGS)
def test_sign_jwt_tokens_verify(
    alg: str, scene: Scene, trusted: KeySet, policy: VerifyPolicy, clock: Callable[[], float]
) -> None:
    token = sign_jwt(scene.claims(), scene.real[alg], typ="at+jwt")
    verified = verify_jwt(token, trusted, policy, clock=clock)
    assert verified.header == scene.header(alg)


# -- alg: none ------------------------------------------------------------------------


def _none(alg: str, *, dot: bool = True, kid: bool = True) -> Build:
    def build(s: Scene) -> str:
        header = s.header(alg=alg) if kid else s.header(alg=alg, drop=("kid",))
        token = s.token(header=header, signer=None)
        assert token.endswith(".")
        return token if dot else token[:-1]

    return build


def _none_with_stolen_signature(s: Scene) -> str:
    _, payload, signature = s.segments()
    return f"{b64(json.dumps(s.header(alg='none')).encode())}.{payload}.{signature}"


ALG_NONE = [
    row(_none("none"), AlgNotAllowed, "alg_not_allowed", "none-trailing-dot"),
    row(_none("none", kid=False), AlgNotAllowed, "alg_not_allowed", "none-no-kid"),
    row(_none("None"), AlgNotAllowed, "alg_not_allowed", "None"),
    row(_none("NONE"), AlgNotAllowed, "alg_not_allowed", "NONE"),
    row(_none("nOnE"), AlgNotAllowed, "alg_not_allowed", "nOnE"),
    row(_none_with_stolen_signature, AlgNotAllowed, "alg_not_allowed", "none-stolen-signature"),
    # Two parts are not a JWS at all: refused before the header is read.
    row(_none("none", dot=False), MalformedToken, "malformed", "none-without-trailing-dot"),
    row(_none("NONE", dot=False), MalformedToken, "malformed", "NONE-without-trailing-dot"),
]


@pytest.mark.parametrize(("build", "expected", "reason"), ALG_NONE)
def test_alg_none_is_rejected(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    check(build, expected, reason, scene, trusted, policy, clock)


# -- alg not bound to the key, unknown or absent ---------------------------------------


def _alg_header(value: Any, *, present: bool = True) -> Build:
    def build(s: Scene) -> str:
        header = s.header("EdDSA", alg=value) if present else s.header("EdDSA", drop=("alg",))
        return s.token("EdDSA", header=header)

    return build


def _foreign_alg(alg: str, kid_of: str) -> Build:
    """Header ``alg`` of the attacker's key, ``kid`` of a real key of another alg."""
    return lambda s: s.token(
        alg, header=s.header(alg, kid=s.real[kid_of].kid), signer=s.attacker[alg]
    )


ALG_NOT_BOUND = [
    row(_alg_header(None, present=False), AlgNotAllowed, "alg_not_allowed", "alg-missing"),
    row(_alg_header(None), AlgNotAllowed, "alg_not_allowed", "alg-null"),
    row(_alg_header(""), AlgNotAllowed, "alg_not_allowed", "alg-empty"),
    row(_alg_header(["EdDSA"]), AlgNotAllowed, "alg_not_allowed", "alg-list"),
    row(_alg_header("eddsa"), AlgNotAllowed, "alg_not_allowed", "alg-lowercase"),
    row(_alg_header("HS512"), AlgNotAllowed, "alg_not_allowed", "alg-HS512-unsupported"),
    row(_alg_header("PS256"), AlgNotAllowed, "alg_not_allowed", "alg-PS256-unsupported"),
    row(_alg_header("ES256K"), AlgNotAllowed, "alg_not_allowed", "alg-ES256K-unsupported"),
    row(_alg_header("Ed25519"), AlgNotAllowed, "alg_not_allowed", "alg-Ed25519-unsupported"),
    row(_foreign_alg("ES256", "EdDSA"), AlgNotAllowed, "alg_not_allowed", "ES256-on-EdDSA-key"),
    row(_foreign_alg("EdDSA", "RS256"), AlgNotAllowed, "alg_not_allowed", "EdDSA-on-RS256-key"),
    row(_foreign_alg("RS256", "HS256"), AlgNotAllowed, "alg_not_allowed", "RS256-on-HS256-key"),
    row(_foreign_alg("HS256", "ES256"), AlgNotAllowed, "alg_not_allowed", "HS256-on-ES256-key"),
]


@pytest.mark.parametrize(("build", "expected", "reason"), ALG_NOT_BOUND)
def test_alg_not_bound_to_the_key_is_rejected(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    check(build, expected, reason, scene, trusted, policy, clock)


@pytest.mark.parametrize("alg", ["ES256", "RS256", "HS256"])
def test_alg_outside_the_policy_is_rejected(
    alg: str, scene: Scene, trusted: KeySet, clock: Callable[[], float]
) -> None:
    policy = VerifyPolicy.for_access_tokens(
        issuer=ISSUER, audience=AUDIENCE, algorithms=frozenset({"EdDSA"})
    )
    verify_jwt(scene.token("EdDSA"), trusted, policy, clock=clock)
    exc = rejection(scene.token(alg), trusted, policy, clock)
    assert type(exc) is AlgNotAllowed and exc.reason == "alg_not_allowed"


# -- algorithm confusion: HMAC keyed with the public key --------------------------------


def _confusion(victim: str, encode: Callable[[Key], bytes]) -> Build:
    def build(s: Scene) -> str:
        public = s.real[victim].public()
        header = {"alg": "HS256", "kid": public.kid, "typ": "at+jwt"}
        return s.token(header=header, signer=hmac_with(encode(public)))

    return build


def _pem(key: Key) -> bytes:
    return key.to_pem()


def _jwk_json(key: Key) -> bytes:
    return json.dumps(key.to_jwk()).encode()


def _der(key: Key) -> bytes:
    return serialization.load_pem_public_key(key.to_pem()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


CONFUSION = [
    row(_confusion("RS256", _pem), AlgNotAllowed, "alg_not_allowed", "HS256-keyed-RS256-pem"),
    row(_confusion("ES256", _pem), AlgNotAllowed, "alg_not_allowed", "HS256-keyed-ES256-pem"),
    row(_confusion("EdDSA", _pem), AlgNotAllowed, "alg_not_allowed", "HS256-keyed-EdDSA-pem"),
    row(
        _confusion("RS256", lambda k: k.to_pem().rstrip(b"\n")),
        AlgNotAllowed,
        "alg_not_allowed",
        "HS256-keyed-RS256-pem-no-newline",
    ),
    row(_confusion("RS256", _jwk_json), AlgNotAllowed, "alg_not_allowed", "HS256-keyed-RS256-jwk"),
    row(_confusion("ES256", _der), AlgNotAllowed, "alg_not_allowed", "HS256-keyed-ES256-der"),
]


@pytest.mark.parametrize(("build", "expected", "reason"), CONFUSION)
def test_hmac_keyed_with_a_public_key_is_rejected(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    check(build, expected, reason, scene, trusted, policy, clock)


@pytest.mark.parametrize("victim", ["EdDSA", "ES256", "RS256"])
def test_hmac_confusion_without_kid_on_a_one_key_set_is_rejected(
    victim: str, scene: Scene, policy: VerifyPolicy, clock: Callable[[], float]
) -> None:
    """A kid-less token resolves to the only key, which still is not an HS256 key."""
    public = scene.real[victim].public()
    keys = KeySet([public])
    header = {"alg": "HS256", "typ": "at+jwt"}
    token = scene.token(header=header, signer=hmac_with(public.to_pem()))
    exc = rejection(token, keys, policy, clock)
    assert type(exc) is AlgNotAllowed
    # The same key set accepts the victim's real kid-less token: the rule above bit.
    real = scene.token(victim, header=scene.header(victim, drop=("kid",)))
    assert verify_jwt(real, keys, policy, clock=clock).kid is None


def test_hmac_algorithm_never_runs_with_a_public_key(scene: Scene) -> None:
    """Defence in depth below the kid/alg check: HS256 with a non-bytes key never verifies."""
    rs = scene.real["RS256"].public()
    data = b"header.payload"
    signature = hmac.digest(rs.to_pem(), data, hashlib.sha256)
    assert not scene.real["HS256"].algorithm.verify(rs.public_key, data, signature)
    assert not scene.real["HS256"].algorithm.verify(rs.to_pem().decode(), data, signature)


# -- jku, x5u, embedded jwk, x5c ---------------------------------------------------------


def _self_signed_cert(key: Key) -> bytes:
    private = serialization.load_pem_private_key(key.to_pem(private=True), password=None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auth.example.com")])
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())  # type: ignore[arg-type]
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .sign(private, hashes.SHA256())  # type: ignore[arg-type]
    )
    return cert.public_bytes(serialization.Encoding.DER)


def _key_pointer(alg: str, real_kid: bool = True, **changes: Callable[[Key], Any]) -> Build:
    """The attacker signs with their key and points the verifier at it."""

    def build(s: Scene) -> str:
        mine = s.attacker[alg]
        header = {"alg": alg, "kid": s.real[alg].kid if real_kid else mine.kid, "typ": "at+jwt"}
        header.update({name: make(mine) for name, make in changes.items()})
        return s.token(alg, header=header, signer=mine)

    return build


def _public_jwk(key: Key) -> dict[str, Any]:
    return key.to_jwk()


def _jku_on_real_signature(s: Scene) -> str:
    header = s.header(jku=f"{ISSUER}/.well-known/jwks.json")
    return s.token(header=header)


def _x5c(key: Key) -> list[str]:
    return [base64.b64encode(_self_signed_cert(key)).decode()]


FORBIDDEN = [
    row(
        _key_pointer("ES256", jwk=_public_jwk),
        ForbiddenHeader,
        "forbidden_header",
        "jwk-attacker-key-real-kid",
    ),
    row(
        _key_pointer("EdDSA", real_kid=False, jwk=_public_jwk),
        ForbiddenHeader,
        "forbidden_header",
        "jwk-attacker-key-own-kid",
    ),
    row(
        _key_pointer("HS256", jwk=lambda k: k.to_jwk(private=True)),
        ForbiddenHeader,
        "forbidden_header",
        "jwk-attacker-oct-secret",
    ),
    row(
        _key_pointer("RS256", jku=lambda _: "https://attacker.example/jwks.json"),
        ForbiddenHeader,
        "forbidden_header",
        "jku-attacker-url",
    ),
    row(
        _key_pointer(
            "RS256", jku=lambda _: "https://auth.example.com.attacker.example/.well-known/jwks"
        ),
        ForbiddenHeader,
        "forbidden_header",
        "jku-lookalike-of-issuer",
    ),
    row(
        _key_pointer("ES256", real_kid=False, jku=lambda _: "http://127.0.0.1:8080/jwks.json"),
        ForbiddenHeader,
        "forbidden_header",
        "jku-ssrf-loopback",
    ),
    row(
        _key_pointer("RS256", x5u=lambda _: "https://attacker.example/cert.pem"),
        ForbiddenHeader,
        "forbidden_header",
        "x5u-attacker-url",
    ),
    row(
        _key_pointer("ES256", x5c=_x5c),
        ForbiddenHeader,
        "forbidden_header",
        "x5c-self-signed-cert",
    ),
    row(_key_pointer("EdDSA", x5c=lambda _: []), ForbiddenHeader, "forbidden_header", "x5c-empty"),
    row(_jku_on_real_signature, ForbiddenHeader, "forbidden_header", "jku-even-with-real-sig"),
]


@pytest.mark.parametrize(("build", "expected", "reason"), FORBIDDEN)
def test_key_pointing_headers_are_rejected(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    check(build, expected, reason, scene, trusted, policy, clock)


# -- crit ---------------------------------------------------------------------------------


def _crit(**changes: Any) -> Build:
    return lambda s: s.token(header=s.header(**changes))


CRIT = [
    row(
        _crit(crit=["urn:attacker:skip-checks"], **{"urn:attacker:skip-checks": True}),
        UnsupportedCritical,
        "unsupported_crit",
        "crit-unknown-extension",
    ),
    row(_crit(crit=["b64"], b64=False), UnsupportedCritical, "unsupported_crit", "crit-b64-false"),
    row(_crit(crit=["exp"], exp=1), UnsupportedCritical, "unsupported_crit", "crit-exp"),
    row(_crit(crit=["alg"]), UnsupportedCritical, "unsupported_crit", "crit-registered-name"),
    row(_crit(crit=[]), UnsupportedCritical, "unsupported_crit", "crit-empty-list"),
    # RFC 7797 says b64 needs crit; without it, verifiers still disagree on the payload.
    row(_crit(b64=False), UnsupportedCritical, "unsupported_crit", "b64-false-without-crit"),
    row(_crit(b64="false"), UnsupportedCritical, "unsupported_crit", "b64-string-without-crit"),
    row(_crit(b64=0), UnsupportedCritical, "unsupported_crit", "b64-zero-without-crit"),
    row(_crit(crit="urn:x"), UnsupportedCritical, "unsupported_crit", "crit-not-a-list"),
]


@pytest.mark.parametrize(("build", "expected", "reason"), CRIT)
def test_unknown_crit_is_rejected(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    check(build, expected, reason, scene, trusted, policy, clock)


@pytest.mark.parametrize(
    "members",
    [
        pytest.param({"b64": True}, id="b64-true"),
        pytest.param({"cty": "JWT"}, id="cty"),
        pytest.param({"x5t": "dGh1bWI"}, id="x5t"),
        pytest.param({"urn:example:trace": "abc"}, id="unknown-member"),
    ],
)
def test_harmless_header_members_are_ignored(
    members: dict[str, Any],
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    """RFC 7515 §4: members not understood, and not critical, are ignored."""
    token = scene.token(header=scene.header(**members))
    assert verify_jwt(token, trusted, policy, clock=clock).header == scene.header(**members)


# -- kid ----------------------------------------------------------------------------------


def _kid(kid: Any, signer: Signer | str = "attacker", alg: str = "HS256") -> Build:
    return lambda s: s.token(alg, header=s.header(alg, kid=kid), signer=signer)


def _kid_from_real(change: Callable[[str], str]) -> Build:
    return lambda s: s.token(header=s.header(kid=change(s.real["EdDSA"].kid)))


LONG_KID = "k" * 4000
UNKNOWN_KID = [
    row(
        lambda s: s.token(header=s.header(kid=s.attacker["EdDSA"].kid), signer="attacker"),
        UnknownKid,
        "unknown_kid",
        "kid-of-attacker-key",
    ),
    # /dev/null read as a key file gives an empty HMAC key.
    row(_kid("../../dev/null", hmac_with(b"")), UnknownKid, "unknown_kid", "kid-dev-null"),
    row(
        _kid("../../../../../../etc/passwd", hmac_with(b"root:x:0:0")),
        UnknownKid,
        "unknown_kid",
        "kid-path-traversal",
    ),
    row(_kid("' OR 1=1 --", hmac_with(b"1")), UnknownKid, "unknown_kid", "kid-sql-injection"),
    row(
        _kid("x' UNION SELECT 'secret' --", hmac_with(b"secret")),
        UnknownKid,
        "unknown_kid",
        "kid-sql-union",
    ),
    row(_kid("key|/usr/bin/id"), UnknownKid, "unknown_kid", "kid-command-injection"),
    row(_kid(LONG_KID), UnknownKid, "unknown_kid", "kid-very-long"),
    row(_kid({"$ne": ""}), UnknownKid, "unknown_kid", "kid-nosql-object"),
    row(_kid(""), UnknownKid, "unknown_kid", "kid-empty"),
    row(_kid(1), UnknownKid, "unknown_kid", "kid-number"),
    row(_kid(True), UnknownKid, "unknown_kid", "kid-true"),
    row(_kid(None, "real", "EdDSA"), UnknownKid, "unknown_kid", "kid-null-many-keys"),
    row(
        lambda s: s.token(header=s.header(drop=("kid",))),
        UnknownKid,
        "unknown_kid",
        "kid-missing-many-keys",
    ),
    row(
        lambda s: s.token(header=s.header(kid=[s.real["EdDSA"].kid])),
        UnknownKid,
        "unknown_kid",
        "kid-list-of-real-kid",
    ),
    row(_kid_from_real(lambda k: k + " "), UnknownKid, "unknown_kid", "kid-trailing-space"),
    row(_kid_from_real(lambda k: k + "\x00"), UnknownKid, "unknown_kid", "kid-trailing-nul"),
    row(_kid_from_real(str.swapcase), UnknownKid, "unknown_kid", "kid-case-changed"),
    row(_kid_from_real(lambda k: k[:-1]), UnknownKid, "unknown_kid", "kid-truncated"),
]


@pytest.mark.parametrize(("build", "expected", "reason"), UNKNOWN_KID)
def test_kid_not_in_the_key_set_is_rejected(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    exc = check(build, expected, reason, scene, trusted, policy, clock)
    for probe in ("dev/null", "passwd", "OR 1=1", "UNION", "/usr/bin", LONG_KID[:50], "$ne"):
        assert probe not in exc.message  # the attacker's kid is never echoed


# -- ECDSA psychic signatures (CVE-2022-21449) and other impossible signatures -------------


def _es256_signature(make: Callable[[int, int], bytes]) -> Build:
    """Real ES256 header and claims; the signature replaced by ``make(r, s)``."""

    def build(s: Scene) -> str:
        header_b64, payload_b64, signature_b64 = s.segments("ES256")
        real = base64.urlsafe_b64decode(signature_b64 + "==")
        r, sig_s = int.from_bytes(real[:32], "big"), int.from_bytes(real[32:], "big")
        return f"{header_b64}.{payload_b64}.{b64(make(r, sig_s))}"

    return build


def _raw(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _der_of(r: int, s: int) -> bytes:
    return encode_dss_signature(r, s)


N = P256_ORDER
PSYCHIC = [
    row(_es256_signature(lambda r, s: bytes(64)), BadSignature, "bad_signature", "r=s=0"),
    row(_es256_signature(lambda r, s: _raw(N, N)), BadSignature, "bad_signature", "r=s=n"),
    row(_es256_signature(lambda r, s: _raw(0, s)), BadSignature, "bad_signature", "r=0"),
    row(_es256_signature(lambda r, s: _raw(r, 0)), BadSignature, "bad_signature", "s=0"),
    row(_es256_signature(lambda r, s: _raw(N, s)), BadSignature, "bad_signature", "r=n"),
    row(_es256_signature(lambda r, s: _raw(r, N)), BadSignature, "bad_signature", "s=n"),
    row(
        _es256_signature(lambda r, s: _raw(N + 1, N + 1)), BadSignature, "bad_signature", "r=s=n+1"
    ),
    row(_es256_signature(lambda r, s: b"\xff" * 64), BadSignature, "bad_signature", "r=s=2^256-1"),
    row(_es256_signature(_der_of), BadSignature, "bad_signature", "der-encoded"),
    row(_es256_signature(lambda r, s: _raw(r, s)[:63]), BadSignature, "bad_signature", "63-bytes"),
    row(
        _es256_signature(lambda r, s: b"\x00" + _raw(r, s)),
        BadSignature,
        "bad_signature",
        "65-bytes-leading-zero",
    ),
    row(_es256_signature(lambda r, s: _raw(s, r)), BadSignature, "bad_signature", "r-s-swapped"),
]


@pytest.mark.parametrize(("build", "expected", "reason"), PSYCHIC)
def test_impossible_ecdsa_signature_is_rejected(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    check(build, expected, reason, scene, trusted, policy, clock)


def test_es256_signature_reencoded_is_still_the_real_one(scene: Scene, trusted: KeySet) -> None:
    """The psychic rows re-encode the real (r, s): the unchanged pair must verify."""
    token = _es256_signature(_raw)(scene)
    assert verify_jws(token, trusted, VerifyPolicy()).alg == "ES256"


# -- stripped and bad signatures ------------------------------------------------------------


def _stripped(alg: str) -> Build:
    return lambda s: ".".join([*s.segments(alg)[:2], ""])


def _transplanted(alg: str) -> Build:
    """The signature of another genuine token of the same key."""

    def build(s: Scene) -> str:
        header_b64, payload_b64, _ = s.segments(alg)
        other = s.token(alg, claims=s.claims(sub="someone-else")).split(".")[2]
        return f"{header_b64}.{payload_b64}.{other}"

    return build


def _elevated(alg: str) -> Build:
    """Roles raised to admin in the payload, the original signature kept."""

    def build(s: Scene) -> str:
        header_b64, _, signature_b64 = s.segments(alg)
        payload = b64(json.dumps(s.claims(roles=["admin"])).encode())
        return f"{header_b64}.{payload}.{signature_b64}"

    return build


def _signature_bytes(alg: str, change: Callable[[bytes], bytes]) -> Build:
    def build(s: Scene) -> str:
        header_b64, payload_b64, signature_b64 = s.segments(alg)
        signature = base64.urlsafe_b64decode(signature_b64 + "==")
        return f"{header_b64}.{payload_b64}.{b64(change(signature))}"

    return build


BAD_SIGNATURE = [
    *[row(_stripped(a), BadSignature, "bad_signature", f"stripped-{a}") for a in ALGS],
    *[row(_transplanted(a), BadSignature, "bad_signature", f"transplanted-{a}") for a in ALGS],
    *[row(_elevated(a), BadSignature, "bad_signature", f"payload-edited-{a}") for a in ALGS],
    *[
        row(
            lambda s, a=a: s.token(a, signer="attacker"),
            BadSignature,
            "bad_signature",
            f"attacker-key-real-kid-{a}",
        )
        for a in ALGS
    ],
    *[
        row(
            _signature_bytes(a, lambda b: b[:-1] + bytes([b[-1] ^ 1])),
            BadSignature,
            "bad_signature",
            f"last-bit-flipped-{a}",
        )
        for a in ALGS
    ],
    *[
        row(_signature_bytes(a, lambda b: b + b), BadSignature, "bad_signature", f"doubled-{a}")
        for a in ALGS
    ],
    row(
        _signature_bytes("RS256", lambda b: b"\x00" + b),
        BadSignature,
        "bad_signature",
        "RS256-leading-zero-byte",
    ),
    row(
        _signature_bytes("RS256", lambda b: b[:-3]),
        BadSignature,
        "bad_signature",
        "RS256-truncated",
    ),
    row(
        _signature_bytes("HS256", lambda b: b[:16]),
        BadSignature,
        "bad_signature",
        "HS256-truncated-mac",
    ),
]


@pytest.mark.parametrize(("build", "expected", "reason"), BAD_SIGNATURE)
def test_bad_signature_is_rejected(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    check(build, expected, reason, scene, trusted, policy, clock)


# -- malformed base64url and JSON ---------------------------------------------------------


def _edit(edit: Callable[[list[str]], str | bytes]) -> Build:
    """Edit the three segments of a genuine EdDSA token (no re-signing)."""
    return lambda s: edit(s.segments())


def _insert(index: int, at: int, text: str) -> Build:
    def edit(parts: list[str]) -> str:
        parts = list(parts)
        parts[index] = parts[index][:at] + text + parts[index][at:]
        return ".".join(parts)

    return _edit(edit)


def _url_alphabet_header(s: Scene) -> dict[str, Any]:
    """A header whose base64url spelling has '-' and '_' (so '+' and '/' in standard)."""
    for pad in range(64):
        header = s.header(x="?" * pad + ">~")
        spelled = b64(json.dumps(header, separators=(",", ":")).encode())
        if "-" in spelled and "_" in spelled:
            return header
    raise AssertionError("no header with both '-' and '_' found")


def _standard_alphabet(segment: str, url: str = "-_", standard: str = "+/") -> str:
    """Spell ``segment`` with base64's ``+`` and ``/`` in place of ``-`` and ``_``."""
    changed = segment.translate(str.maketrans(url, standard))
    assert changed != segment
    return changed


def _std_header(url: str = "-_", standard: str = "+/") -> Build:
    def build(s: Scene) -> str:
        header_b64, payload_b64, _ = s.token(header=_url_alphabet_header(s)).split(".")
        # Even re-signed over the standard spelling: the encoding rule alone rejects it.
        return s.resign(_standard_alphabet(header_b64, url, standard), payload_b64)

    return build


def _std_signature(s: Scene) -> str:
    for n in range(64):
        header_b64, payload_b64, signature_b64 = s.token(claims=s.claims(jti=f"j{n}")).split(".")
        if "-" in signature_b64 or "_" in signature_b64:
            return f"{header_b64}.{payload_b64}.{_standard_alphabet(signature_b64)}"
    raise AssertionError("no signature with '-' or '_' found")


def _std_payload(s: Scene) -> str:
    header_b64 = s.segments()[0]
    payload = b64(json.dumps(s.claims(note="?>~" * 8)).encode())
    return s.resign(header_b64, _standard_alphabet(payload))


def _non_canonical(index: int) -> Build:
    """Set an unused low bit of the last character: same bytes if decoded leniently."""

    def build(s: Scene) -> str:
        for pad in range(4):
            parts = s.token(header=s.header(x="p" * pad)).split(".")
            segment = parts[index]
            if len(segment) % 4 in (2, 3):
                alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                last = alphabet[alphabet.index(segment[-1]) | 1]
                assert base64.urlsafe_b64decode(segment + "==") == base64.urlsafe_b64decode(
                    segment[:-1] + last + "=="
                )
                parts[index] = segment[:-1] + last
                return ".".join(parts)
        raise AssertionError("no segment of length 2 or 3 mod 4")

    return build


def _raw_header(extra: bytes = b"", *, alg: bytes = b"EdDSA") -> Callable[[Scene], bytes]:
    def make(s: Scene) -> bytes:
        kid = s.real["EdDSA"].kid.encode()
        return b'{"alg":"' + alg + b'","kid":"' + kid + b'","typ":"at+jwt"' + extra + b"}"

    return make


def _with_header(make: Callable[[Scene], bytes]) -> Build:
    """A header of exact bytes, signed with the real EdDSA key."""
    return lambda s: s.token(header=make(s))


def _with_payload(payload: bytes | Callable[[Scene], bytes]) -> Build:
    """A payload of exact bytes, signed with the real EdDSA key."""
    return lambda s: s.token(claims=payload(s) if callable(payload) else payload)


def _claims_with(name: str, literal: bytes) -> Callable[[Scene], bytes]:
    """The valid claims with ``name`` set to a raw JSON literal (NaN, 1e400…)."""

    def make(s: Scene) -> bytes:
        text = json.dumps(s.claims(**{name: "__literal__"})).encode()
        return text.replace(b'"__literal__"', literal)

    return make


MALFORMED_HEADER = [
    row(_edit(lambda p: f"{p[0]}=.{p[1]}.{p[2]}"), MalformedToken, "malformed", "header-padded"),
    row(
        _edit(lambda p: f"{p[0]}.{p[1]}.{p[2]}=="), MalformedToken, "malformed", "signature-padded"
    ),
    row(_std_header(), MalformedToken, "malformed", "header-standard-alphabet"),
    row(_std_header("-", "+"), MalformedToken, "malformed", "header-plus-for-minus"),
    row(_std_header("_", "/"), MalformedToken, "malformed", "header-slash-for-underscore"),
    row(_std_signature, MalformedToken, "malformed", "signature-standard-alphabet"),
    row(_insert(0, 5, " "), MalformedToken, "malformed", "header-inner-space"),
    row(_insert(2, 20, " "), MalformedToken, "malformed", "signature-inner-space"),
    row(_insert(2, 40, "\r\n"), MalformedToken, "malformed", "signature-line-break"),
    row(_insert(0, 7, "\t"), MalformedToken, "malformed", "header-tab"),
    row(_edit(lambda p: " " + ".".join(p)), MalformedToken, "malformed", "leading-space"),
    row(_edit(lambda p: ".".join(p) + "\n"), MalformedToken, "malformed", "trailing-newline"),
    row(_insert(1, 3, "é"), MalformedToken, "malformed", "payload-non-ascii"),
    row(_insert(0, 3, "Ｅ"), MalformedToken, "malformed", "header-fullwidth-letter"),
    row(_insert(2, 3, "\u200b"), MalformedToken, "malformed", "signature-zero-width-space"),
    row(
        _edit(lambda p: ".".join(p).encode().replace(b".", b"\xc3\xa9.", 1)),
        MalformedToken,
        "malformed",
        "header-non-ascii-bytes",
    ),
    row(_non_canonical(0), MalformedToken, "malformed", "header-non-canonical-last-char"),
    row(_non_canonical(2), MalformedToken, "malformed", "signature-non-canonical-last-char"),
    row(_edit(lambda p: ""), MalformedToken, "malformed", "empty-token"),
    row(_edit(lambda p: ".."), MalformedToken, "malformed", "only-two-dots"),
    row(_edit(lambda p: "..."), MalformedToken, "malformed", "only-three-dots"),
    row(_edit(lambda p: f"{p[0]}.{p[1]}"), MalformedToken, "malformed", "two-segments"),
    row(_edit(lambda p: ".".join([*p, p[2]])), MalformedToken, "malformed", "four-segments"),
    row(_edit(lambda p: ".".join([*p, "", ""])), MalformedToken, "malformed", "five-segments-jwe"),
    row(_edit(lambda p: f".{p[1]}.{p[2]}"), MalformedToken, "malformed", "header-empty"),
    row(
        _with_header(lambda s: _raw_header()(s).replace(b"at+jwt", b"at+jwt\xff")),
        MalformedToken,
        "malformed",
        "header-invalid-utf8",
    ),
    row(
        _with_header(lambda s: b"\xef\xbb\xbf" + _raw_header()(s)),
        MalformedToken,
        "malformed",
        "header-utf8-bom",
    ),
    row(
        _with_header(lambda s: _raw_header()(s).decode().encode("utf-16")),
        MalformedToken,
        "malformed",
        "header-utf16",
    ),
    row(
        _with_header(lambda s: _raw_header()(s) + b"x"),
        MalformedToken,
        "malformed",
        "header-trailing-garbage",
    ),
    row(
        _with_header(lambda s: _raw_header()(s) * 2),
        MalformedToken,
        "malformed",
        "header-two-objects",
    ),
    row(_with_header(lambda s: b"[]"), MalformedToken, "malformed", "header-array"),
    row(_with_header(lambda s: b'["EdDSA"]'), MalformedToken, "malformed", "header-array-of-alg"),
    row(_with_header(lambda s: b'"EdDSA"'), MalformedToken, "malformed", "header-string"),
    row(_with_header(lambda s: b"1"), MalformedToken, "malformed", "header-number"),
    row(_with_header(lambda s: b"null"), MalformedToken, "malformed", "header-null"),
    row(_with_header(lambda s: b"true"), MalformedToken, "malformed", "header-true"),
    row(_with_header(_raw_header(b',"x":NaN')), MalformedToken, "malformed", "header-NaN"),
    row(
        _with_header(_raw_header(b',"x":Infinity')), MalformedToken, "malformed", "header-Infinity"
    ),
    row(
        _with_header(_raw_header(b',"x":-Infinity')),
        MalformedToken,
        "malformed",
        "header-minus-Infinity",
    ),
    row(
        _with_header(_raw_header(b',"alg":"none"')),
        MalformedToken,
        "malformed",
        "duplicate-alg-none-last",
    ),
    row(
        _with_header(lambda s: _raw_header(alg=b"none")(s)[:-1] + b',"alg":"EdDSA"}'),
        MalformedToken,
        "malformed",
        "duplicate-alg-none-first",
    ),
    row(
        _with_header(_raw_header(b',"\\u0061lg":"none"')),
        MalformedToken,
        "malformed",
        "duplicate-alg-escaped-name",
    ),
    row(
        _with_header(_raw_header(b',"kid":"attacker"')),
        MalformedToken,
        "malformed",
        "duplicate-kid",
    ),
    row(
        _with_header(_raw_header(b',"typ":"JWT"')),
        MalformedToken,
        "malformed",
        "duplicate-typ",
    ),
    row(
        _with_header(_raw_header(b',"x":{"a":1,"a":2}')),
        MalformedToken,
        "malformed",
        "duplicate-nested-member",
    ),
    row(
        _with_header(_raw_header(b',"x":' + b"[" * 2000 + b"]" * 2000)),
        MalformedToken,
        "malformed",
        "header-nested-2000-deep",
    ),
    row(
        _with_header(_raw_header(b',"x":1' + b"0" * 4400)),
        MalformedToken,
        "malformed",
        "header-int-over-4300-digits",
    ),
]

MALFORMED_HEADER += [
    row(_crit(cty=1), MalformedToken, "malformed", "cty-number"),
    row(_crit(cty=["JWT"]), MalformedToken, "malformed", "cty-list"),
    row(_crit(x5t=None), MalformedToken, "malformed", "x5t-null"),
    row(_crit(**{"x5t#S256": {"a": 1}}), MalformedToken, "malformed", "x5t#S256-object"),
]

MALFORMED_PAYLOAD = [
    row(
        lambda s: s.resign(s.segments()[0], s.segments()[1] + "="),
        MalformedToken,
        "malformed",
        "payload-padded-resigned",
    ),
    row(_std_payload, MalformedToken, "malformed", "payload-standard-alphabet-resigned"),
    row(_with_payload(b"[]"), MalformedToken, "malformed", "payload-array"),
    row(_with_payload(b'"admin"'), MalformedToken, "malformed", "payload-string"),
    row(_with_payload(b"null"), MalformedToken, "malformed", "payload-null"),
    row(_with_payload(b"42"), MalformedToken, "malformed", "payload-number"),
    row(_with_payload(b""), MalformedToken, "malformed", "payload-empty"),
    row(_with_payload(b"\xff\xfe"), MalformedToken, "malformed", "payload-invalid-utf8"),
    row(_with_payload(_claims_with("exp", b"NaN")), MalformedToken, "malformed", "exp-NaN"),
    row(
        _with_payload(_claims_with("exp", b"Infinity")), MalformedToken, "malformed", "exp-Infinity"
    ),
    row(
        _with_payload(_claims_with("nbf", b"-Infinity")),
        MalformedToken,
        "malformed",
        "nbf-minus-Infinity",
    ),
    row(
        _with_payload(_claims_with("roles", b"[" * 2000 + b"]" * 2000)),
        MalformedToken,
        "malformed",
        "payload-nested-2000-deep",
    ),
    # Two readers of one signed token must not see two audiences or subjects.
    row(
        _with_payload(lambda s: json.dumps(s.claims()).encode()[:-1] + b',"aud":"elsewhere"}'),
        MalformedToken,
        "malformed",
        "payload-duplicate-aud",
    ),
    row(
        _with_payload(lambda s: json.dumps(s.claims()).encode()[:-1] + b',"\\u0073ub":"admin"}'),
        MalformedToken,
        "malformed",
        "payload-duplicate-escaped-sub",
    ),
    row(
        _with_payload(_claims_with("cnf", b'{"jkt":"a","jkt":"b"}')),
        MalformedToken,
        "malformed",
        "payload-duplicate-nested-member",
    ),
]


@pytest.mark.parametrize(("build", "expected", "reason"), MALFORMED_HEADER + MALFORMED_PAYLOAD)
def test_malformed_base64_or_json_is_rejected(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    check(build, expected, reason, scene, trusted, policy, clock)


# -- oversized tokens ----------------------------------------------------------------------

OVERSIZED = [
    row(
        lambda s: s.token(claims=s.claims(pad="x" * 8200)),
        TokenTooLarge,
        "too_large",
        "over-8-kib-real-signature",
    ),
    row(
        lambda s: s.token(claims=s.claims(pad="x" * 8200)).encode(),
        TokenTooLarge,
        "too_large",
        "over-8-kib-as-bytes",
    ),
    row(lambda s: "a" * 1_000_000, TokenTooLarge, "too_large", "one-megabyte-garbage"),
    row(lambda s: "." * 1_000_000, TokenTooLarge, "too_large", "one-megabyte-of-dots"),
    row(lambda s: "é" * 100_000, TokenTooLarge, "too_large", "non-ascii-flood"),
    row(lambda s: s.token(header=s.header(kid="k" * 9000)), TokenTooLarge, "too_large", "huge-kid"),
]


@pytest.mark.parametrize(("build", "expected", "reason"), OVERSIZED)
def test_oversized_token_is_rejected(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    check(build, expected, reason, scene, trusted, policy, clock)


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_size_limit_is_exact(
    as_bytes: bool, scene: Scene, trusted: KeySet, clock: Callable[[], float]
) -> None:
    token = scene.token()
    data: str | bytes = token.encode() if as_bytes else token

    def policy(limit: int) -> VerifyPolicy:
        return VerifyPolicy.for_access_tokens(
            issuer=ISSUER, audience=AUDIENCE, max_token_bytes=limit
        )

    verify_jwt(data, trusted, policy(len(token)), clock=clock)
    exc = rejection(data, trusted, policy(len(token) - 1), clock)
    assert type(exc) is TokenTooLarge


# -- typ -----------------------------------------------------------------------------------


def _typ(value: Any, *, present: bool = True, **claims: Any) -> Build:
    def build(s: Scene) -> str:
        header = s.header(typ=value) if present else s.header(drop=("typ",))
        return s.token(header=header, claims=s.claims(**claims) if claims else None)

    return build


def _id_token(s: Scene) -> str:
    """A genuine OIDC ID token of the same issuer, for a client named like the service."""
    claims = {
        "iss": ISSUER,
        "sub": "user-42",
        "aud": AUDIENCE,
        "exp": s.now + 300,
        "iat": s.now,
        "nonce": "n-0S6_WzA2Mj",
        "auth_time": s.now - 5,
    }
    return s.token(header=s.header(typ="JWT"), claims=claims)


WRONG_TYPE = [
    row(_id_token, WrongType, "wrong_type", "id-token-typ-JWT"),
    row(_typ("JWT"), WrongType, "wrong_type", "typ-JWT"),
    row(_typ(None, present=False), WrongType, "wrong_type", "typ-missing"),
    row(_typ("jwt"), WrongType, "wrong_type", "typ-jwt-lowercase"),
    row(_typ("application/jwt"), WrongType, "wrong_type", "typ-application-jwt"),
    row(_typ("dpop+jwt"), WrongType, "wrong_type", "typ-dpop"),
    row(_typ("logout+jwt"), WrongType, "wrong_type", "typ-logout-token"),
    row(_typ("secevent+jwt"), WrongType, "wrong_type", "typ-security-event"),
    row(_typ("at+jwt "), WrongType, "wrong_type", "typ-trailing-space"),
    row(_typ("at+jwt; charset=utf-8"), WrongType, "wrong_type", "typ-with-parameter"),
    row(_typ("xat+jwt"), WrongType, "wrong_type", "typ-prefixed"),
    row(_typ(""), WrongType, "wrong_type", "typ-empty"),
    row(_typ(None), WrongType, "wrong_type", "typ-null"),
    row(_typ(["at+jwt"]), WrongType, "wrong_type", "typ-list"),
    row(
        lambda s: s.token(header=s.header(typ="JWT", cty="at+jwt")),
        WrongType,
        "wrong_type",
        "typ-JWT-cty-at+jwt",
    ),
]


@pytest.mark.parametrize(("build", "expected", "reason"), WRONG_TYPE)
def test_wrong_typ_is_rejected(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    check(build, expected, reason, scene, trusted, policy, clock)


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"])
def test_access_token_typ_spellings_are_accepted(
    typ: str, scene: Scene, trusted: KeySet, policy: VerifyPolicy, clock: Callable[[], float]
) -> None:
    token = scene.token(header=scene.header(typ=typ))
    assert verify_jwt(token, trusted, policy, clock=clock).header["typ"] == typ


# -- iss and aud ---------------------------------------------------------------------------


def _claim(**changes: Any) -> Build:
    return lambda s: s.token(claims=s.claims(**changes))


WRONG_ISSUER = [
    row(_claim(iss="https://attacker.example"), WrongIssuer, "wrong_issuer", "iss-attacker"),
    row(_claim(iss=ISSUER + "/"), WrongIssuer, "wrong_issuer", "iss-trailing-slash"),
    row(_claim(iss=ISSUER.upper()), WrongIssuer, "wrong_issuer", "iss-uppercase"),
    row(_claim(iss="http://auth.example.com"), WrongIssuer, "wrong_issuer", "iss-http"),
    row(_claim(iss=ISSUER + ":443"), WrongIssuer, "wrong_issuer", "iss-explicit-port"),
    row(_claim(iss=ISSUER + ".attacker.example"), WrongIssuer, "wrong_issuer", "iss-lookalike"),
    row(_claim(iss=ISSUER + "/tenant"), WrongIssuer, "wrong_issuer", "iss-with-path"),
    row(_claim(iss=""), WrongIssuer, "wrong_issuer", "iss-empty"),
]

WRONG_AUDIENCE = [
    row(_claim(aud="billing"), WrongAudience, "wrong_audience", "aud-other-service"),
    row(
        _claim(aud=["billing", "payments"]),
        WrongAudience,
        "wrong_audience",
        "aud-list-without-us",
    ),
    row(_claim(aud="Orders"), WrongAudience, "wrong_audience", "aud-case-changed"),
    row(_claim(aud="orders "), WrongAudience, "wrong_audience", "aud-trailing-space"),
    row(_claim(aud="orders-admin"), WrongAudience, "wrong_audience", "aud-prefix-match"),
    row(_claim(aud="ord"), WrongAudience, "wrong_audience", "aud-substring"),
    row(_claim(aud="*"), WrongAudience, "wrong_audience", "aud-wildcard"),
    row(_claim(aud=ISSUER), WrongAudience, "wrong_audience", "aud-the-issuer"),
    row(_claim(aud=["orders billing"]), WrongAudience, "wrong_audience", "aud-joined-string"),
    row(_claim(aud=[]), InvalidClaim, "invalid_claim", "aud-empty-list"),
    row(_claim(aud=[AUDIENCE, 1]), InvalidClaim, "invalid_claim", "aud-list-with-number"),
    row(_claim(aud=[[AUDIENCE]]), InvalidClaim, "invalid_claim", "aud-nested-list"),
    row(_claim(aud={AUDIENCE: True}), InvalidClaim, "invalid_claim", "aud-object"),
    row(_claim(aud=1), InvalidClaim, "invalid_claim", "aud-number"),
    row(_claim(aud=None), InvalidClaim, "invalid_claim", "aud-null"),
    row(_claim(drop=("aud",)), MissingClaim, "missing_claim", "aud-missing"),
]


@pytest.mark.parametrize(("build", "expected", "reason"), WRONG_ISSUER)
def test_wrong_issuer_is_rejected(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    check(build, expected, reason, scene, trusted, policy, clock)


@pytest.mark.parametrize(("build", "expected", "reason"), WRONG_AUDIENCE)
def test_wrong_audience_is_rejected(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    check(build, expected, reason, scene, trusted, policy, clock)


@pytest.mark.parametrize(
    "aud",
    [AUDIENCE, [AUDIENCE], ["billing", AUDIENCE], [AUDIENCE, "billing"]],
    ids=["string", "list-of-one", "list-last", "list-first"],
)
def test_audience_naming_us_is_accepted(
    aud: Any, scene: Scene, trusted: KeySet, policy: VerifyPolicy, clock: Callable[[], float]
) -> None:
    verified = verify_jwt(scene.token(claims=scene.claims(aud=aud)), trusted, policy, clock=clock)
    assert verified.claims["aud"] == aud


def test_any_of_several_configured_audiences_is_accepted(
    scene: Scene, trusted: KeySet, clock: Callable[[], float]
) -> None:
    policy = VerifyPolicy.for_access_tokens(issuer=ISSUER, audience={"orders", "orders-v2"})
    verify_jwt(scene.token(claims=scene.claims(aud="orders-v2")), trusted, policy, clock=clock)
    exc = rejection(scene.token(claims=scene.claims(aud="billing")), trusted, policy, clock)
    assert type(exc) is WrongAudience


# -- exp, nbf, iat -------------------------------------------------------------------------


def _at(**offsets: int) -> Build:
    """Claims with times relative to the frozen clock."""
    return lambda s: s.token(claims=s.claims(**{k: s.now + v for k, v in offsets.items()}))


TIMES = [
    row(_at(exp=-31), TokenExpired, "expired", "exp-31s-ago-leeway-30"),
    row(_at(exp=-30), TokenExpired, "expired", "exp-exactly-leeway-ago"),
    row(_at(exp=-86_400, iat=-90_000, nbf=-90_000), TokenExpired, "expired", "exp-yesterday"),
    row(lambda s: s.token(claims=s.claims(exp=0)), TokenExpired, "expired", "exp-epoch"),
    row(lambda s: s.token(claims=s.claims(exp=-1)), TokenExpired, "expired", "exp-negative"),
    row(_at(nbf=31), TokenNotYetValid, "not_yet_valid", "nbf-in-31s-leeway-30"),
    row(_at(nbf=86_400, exp=90_000), TokenNotYetValid, "not_yet_valid", "nbf-tomorrow"),
    row(_at(iat=31), IssuedInFuture, "issued_in_future", "iat-in-31s-leeway-30"),
    row(
        _at(iat=86_400, nbf=86_400, exp=90_000),
        TokenNotYetValid,
        "not_yet_valid",
        "iat-and-nbf-tomorrow",
    ),
    row(_at(iat=86_400, exp=90_000), IssuedInFuture, "issued_in_future", "iat-tomorrow"),
]


@pytest.mark.parametrize(("build", "expected", "reason"), TIMES)
def test_expired_not_yet_valid_and_future_tokens_are_rejected(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    check(build, expected, reason, scene, trusted, policy, clock)


LEEWAY_EDGES = [
    # (claim, offset from now as a function of the leeway, accepted?, error when not)
    pytest.param("exp", lambda w: -w + 1, None, id="exp-just-inside"),
    pytest.param("exp", lambda w: -w + 0.5, None, id="exp-half-second-inside"),
    pytest.param("exp", lambda w: -w, TokenExpired, id="exp-at-edge"),
    pytest.param("exp", lambda w: -w - 1, TokenExpired, id="exp-just-outside"),
    pytest.param("nbf", lambda w: w, None, id="nbf-at-edge"),
    pytest.param("nbf", lambda w: w + 0.5, TokenNotYetValid, id="nbf-half-second-outside"),
    pytest.param("nbf", lambda w: w + 1, TokenNotYetValid, id="nbf-just-outside"),
    pytest.param("iat", lambda w: w, None, id="iat-at-edge"),
    pytest.param("iat", lambda w: w + 1, IssuedInFuture, id="iat-just-outside"),
]


@pytest.mark.parametrize("leeway", [0, 30, 120], ids=lambda w: f"leeway-{w}")
@pytest.mark.parametrize(("claim", "offset", "error"), LEEWAY_EDGES)
def test_leeway_is_respected_both_ways(
    leeway: int,
    claim: str,
    offset: Callable[[int], float],
    error: type[TokenRejected] | None,
    scene: Scene,
    trusted: KeySet,
    clock: Callable[[], float],
) -> None:
    policy = VerifyPolicy.for_access_tokens(issuer=ISSUER, audience=AUDIENCE, leeway=leeway)
    claims = scene.claims(**{claim: scene.now + offset(leeway)})
    if claim != "exp":
        claims["exp"] = scene.now + leeway + 300
    token = scene.token(claims=claims)
    if error is None:
        assert verify_jwt(token, trusted, policy, clock=clock).claims[claim] == claims[claim]
    else:
        assert type(rejection(token, trusted, policy, clock)) is error


def test_clock_is_the_injected_one(scene: Scene, trusted: KeySet, policy: VerifyPolicy) -> None:
    token = scene.token()
    verify_jwt(token, trusted, policy, clock=lambda: float(scene.now))
    late = float(scene.now + 10_000)
    assert type(rejection(token, trusted, policy, lambda: late)) is TokenExpired
    early = float(scene.now - 10_000)
    assert type(rejection(token, trusted, policy, lambda: early)) is TokenNotYetValid


# -- missing and invalid claims ------------------------------------------------------------

MISSING = [
    row(_claim(drop=(name,)), MissingClaim, "missing_claim", f"{name}-missing")
    for name in sorted(ACCESS_TOKEN_CLAIMS)
]


@pytest.mark.parametrize(("build", "expected", "reason"), MISSING)
def test_missing_required_claim_is_rejected(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    check(build, expected, reason, scene, trusted, policy, clock)


def test_default_policy_requires_exp(scene: Scene, trusted: KeySet) -> None:
    token = scene.token(claims=scene.claims(drop=("exp",)))
    exc = rejection(token, trusted, VerifyPolicy(), lambda: float(scene.now))
    assert type(exc) is MissingClaim
    assert "exp" in exc.message


FAR_EXP = 2_000_000_000
INVALID = [
    row(_claim(exp=str(FAR_EXP)), InvalidClaim, "invalid_claim", "exp-string"),
    row(_claim(exp=True), InvalidClaim, "invalid_claim", "exp-true"),
    row(_claim(exp=False), InvalidClaim, "invalid_claim", "exp-false"),
    row(_claim(exp=None), InvalidClaim, "invalid_claim", "exp-null"),
    row(_claim(exp=[FAR_EXP]), InvalidClaim, "invalid_claim", "exp-list"),
    row(_claim(exp={"$date": FAR_EXP}), InvalidClaim, "invalid_claim", "exp-object"),
    row(_claim(exp=10**400), InvalidClaim, "invalid_claim", "exp-int-beyond-float"),
    row(_with_payload(_claims_with("exp", b"1e400")), InvalidClaim, "invalid_claim", "exp-1e400"),
    row(
        _with_payload(_claims_with("nbf", b"-1e400")),
        InvalidClaim,
        "invalid_claim",
        "nbf-minus-1e400",
    ),
    row(_claim(nbf="0"), InvalidClaim, "invalid_claim", "nbf-string"),
    row(_claim(nbf=None), InvalidClaim, "invalid_claim", "nbf-null"),
    row(_claim(iat="now"), InvalidClaim, "invalid_claim", "iat-string"),
    row(_claim(iat=True), InvalidClaim, "invalid_claim", "iat-true"),
    row(_claim(iss=1), InvalidClaim, "invalid_claim", "iss-number"),
    row(_claim(iss=[ISSUER]), InvalidClaim, "invalid_claim", "iss-list"),
    row(_claim(iss=None), InvalidClaim, "invalid_claim", "iss-null"),
    row(_claim(sub=42), InvalidClaim, "invalid_claim", "sub-number"),
    row(_claim(jti=1), InvalidClaim, "invalid_claim", "jti-number"),
    row(_claim(client_id=["web"]), InvalidClaim, "invalid_claim", "client_id-list"),
    row(_claim(scope=["orders:read"]), InvalidClaim, "invalid_claim", "scope-list"),
    row(_claim(sid=None), InvalidClaim, "invalid_claim", "sid-null"),
]


@pytest.mark.parametrize(("build", "expected", "reason"), INVALID)
def test_claim_of_the_wrong_type_is_rejected(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    check(build, expected, reason, scene, trusted, policy, clock)


def test_fractional_numeric_dates_are_accepted(
    scene: Scene, trusted: KeySet, policy: VerifyPolicy, clock: Callable[[], float]
) -> None:
    claims = scene.claims(exp=scene.now + 0.75, iat=scene.now - 0.25, nbf=scene.now + 0.5)
    assert verify_jwt(scene.token(claims=claims), trusted, policy, clock=clock).claims == claims


# -- verify_jws applies every header rule too -----------------------------------------------

HEADER_RULES = (
    ALG_NONE
    + ALG_NOT_BOUND
    + CONFUSION
    + FORBIDDEN
    + CRIT
    + UNKNOWN_KID
    + PSYCHIC
    + BAD_SIGNATURE
    + MALFORMED_HEADER
    + OVERSIZED
    + WRONG_TYPE[1:]
)


@pytest.mark.parametrize(("build", "expected", "reason"), HEADER_RULES)
def test_verify_jws_applies_the_same_header_rules(
    build: Build,
    expected: type[TokenRejected],
    reason: str,
    scene: Scene,
    trusted: KeySet,
    policy: VerifyPolicy,
    clock: Callable[[], float],
) -> None:
    exc = rejection(build(scene), trusted, policy, clock, verify=verify_jws)
    assert type(exc) is expected
    assert exc.reason == reason


# -- the error tree, the policy and the signer ---------------------------------------------


def test_reason_codes_are_distinct_and_listed() -> None:
    classes = [getattr(errors, name) for name in errors.__all__ if name != "REASONS"]
    assert all(issubclass(cls, TokenRejected) for cls in classes)
    assert not any(issubclass(cls, OperatorError) for cls in classes)
    reasons = [cls.reason for cls in classes]
    assert len(set(reasons)) == len(reasons)
    assert set(reasons) == REASONS


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"audience": "orders"}, id="audience-string"),
        pytest.param({"algorithms": frozenset({"none"})}, id="algorithms-none"),
        pytest.param({"algorithms": frozenset({"HS512"})}, id="algorithms-unsupported"),
        pytest.param({"algorithms": frozenset()}, id="algorithms-empty"),
        pytest.param({"leeway": -1}, id="leeway-negative"),
        pytest.param({"leeway": 301}, id="leeway-over-5-minutes"),
        pytest.param({"max_token_bytes": 63}, id="max-token-bytes-tiny"),
    ],
)
def test_policy_refuses_unsafe_configuration(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        VerifyPolicy(**kwargs)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"jku": "https://attacker.example/jwks"}, id="jku"),
        pytest.param({"x5u": "https://attacker.example/cert"}, id="x5u"),
        pytest.param({"jwk": {"kty": "oct", "k": "AAAA"}}, id="jwk"),
        pytest.param({"x5c": []}, id="x5c"),
        pytest.param({"alg": "none"}, id="alg"),
        pytest.param({"kid": "other"}, id="kid"),
    ],
)
def test_sign_jwt_refuses_headers_that_would_lie(
    headers: dict[str, Any], real_keys: dict[str, Key]
) -> None:
    with pytest.raises(ValueError):
        sign_jwt({"sub": "x"}, real_keys["EdDSA"], headers=headers)


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
def test_public_key_cannot_sign(alg: str, real_keys: dict[str, Key]) -> None:
    with pytest.raises(InvalidKey):
        sign_jwt({"sub": "x"}, real_keys[alg].public())
