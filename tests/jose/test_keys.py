"""Keys and key sets: round trips, RFC 7638 kids, strength rules, JWKS import and export."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519
from joserfc.jwk import JWKRegistry

from authmesh.errors import InvalidKey
from authmesh.jose import Key, KeySet
from authmesh.jose.b64 import b64url_encode

ASYMMETRIC = ("EdDSA", "ES256", "RS256")
ALGS = (*ASYMMETRIC, "HS256")
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
VECTORS = Path(__file__).parent / "vectors"
# RFC 7638 §3.2: the required members of each key type, in the hash input.
THUMBPRINT_MEMBERS = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y")}
THUMBPRINT_MEMBERS |= {"RSA": ("e", "kty", "n"), "oct": ("k", "kty")}


def rfc7638(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint written out from the spec, independent of joserfc."""
    members = {name: jwk[name] for name in THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64url_encode(hashlib.sha256(canonical).digest()).decode()


def pem(private_key: Any, *, public: bool = False, fmt: str = "pkcs8") -> bytes:
    if public:
        return bytes(
            private_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    formats = {
        "pkcs8": serialization.PrivateFormat.PKCS8,
        "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
    }
    return bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM, formats[fmt], serialization.NoEncryption()
        )
    )


def public_jwk(private_key: Any) -> dict[str, Any]:
    """The public JWK of any key, written by cryptography + joserfc, not by us."""
    numbers = private_key.public_key().public_numbers()
    if isinstance(numbers, rsa.RSAPublicNumbers):
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        return {"kty": "RSA", "n": _b64(n), "e": _b64(numbers.e.to_bytes(3, "big"))}
    size = (private_key.curve.key_size + 7) // 8
    crv = {"secp384r1": "P-384", "secp521r1": "P-521"}[private_key.curve.name]
    x, y = numbers.x.to_bytes(size, "big"), numbers.y.to_bytes(size, "big")
    return {"kty": "EC", "crv": crv, "x": _b64(x), "y": _b64(y)}


def _b64(data: bytes) -> str:
    return b64url_encode(data).decode()


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    return {alg: Key.generate(alg) for alg in ALGS}


def same_signer(a: Key, b: Key) -> None:
    """``b`` verifies what ``a`` signs, and the other way round when both can sign."""
    data = b"round trip"
    assert b.verify(data, a.sign(data))
    if b.is_private:
        assert a.verify(data, b.sign(data))
    assert not b.verify(data + b"!", a.sign(data))


# -- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ASYMMETRIC)
@pytest.mark.parametrize("private", [True, False], ids=["private", "public"])
def test_pem_round_trip(alg: str, private: bool, keys: dict[str, Key]) -> None:
    key = keys[alg]
    loaded = Key.from_pem(key.to_pem(private=private))
    assert (loaded.alg, loaded.kid, loaded.is_private) == (alg, key.kid, private)
    same_signer(key, loaded)


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("private", [True, False], ids=["private", "public"])
def test_jwk_round_trip(alg: str, private: bool, keys: dict[str, Key]) -> None:
    key = keys[alg]
    if alg == "HS256" and not private:
        with pytest.raises(InvalidKey):
            key.to_jwk()
        return
    jwk = key.to_jwk(private=private)
    assert (jwk["kid"], jwk["alg"], jwk["use"]) == (key.kid, alg, "sig")
    loaded = Key.from_jwk(jwk)
    assert (loaded.alg, loaded.kid, loaded.is_private) == (alg, key.kid, private or alg == "HS256")
    same_signer(key, loaded)


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("form", ["pem", "jwk"])
def test_save_and_load_file(alg: str, form: str, keys: dict[str, Key], tmp_path: Path) -> None:
    key = keys[alg]
    if form == "pem" and alg == "HS256":
        with pytest.raises(InvalidKey):
            key.to_pem(private=True)
        return
    path = tmp_path / f"key.{form}"
    data = key.to_pem(private=True) if form == "pem" else json.dumps(key.to_jwk(private=True))
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    loaded = Key.load(path)
    assert (loaded.alg, loaded.kid, loaded.is_private) == (alg, key.kid, True)
    same_signer(key, loaded)
    assert [k.kid for k in KeySet.load(path)] == [key.kid]


@pytest.mark.parametrize(
    ("alg", "make"),
    [
        pytest.param("RS256", lambda: rsa.generate_private_key(65537, 2048), id="rsa-pkcs1"),
        pytest.param("ES256", lambda: ec.generate_private_key(ec.SECP256R1()), id="ec-sec1"),
    ],
)
def test_traditional_openssl_pem_loads(alg: str, make: Any) -> None:
    private = make()
    text = pem(private, fmt="traditional")
    assert b"BEGIN RSA PRIVATE KEY" in text or b"BEGIN EC PRIVATE KEY" in text
    key = Key.from_pem(text)
    assert key.alg == alg and key.is_private
    assert Key.from_pem(pem(private, public=True)).verify(b"x", key.sign(b"x"))


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_public_has_no_private_part(alg: str, keys: dict[str, Key]) -> None:
    public = keys[alg].public()
    assert not public.is_private
    assert PRIVATE_MEMBERS.isdisjoint(public.to_jwk())
    with pytest.raises(InvalidKey):
        public.sign(b"x")
    with pytest.raises(InvalidKey):
        public.to_pem(private=True)
    with pytest.raises(InvalidKey):
        public.to_jwk(private=True)
    assert b"PRIVATE" not in public.to_pem()


def test_hs256_secret_has_no_public_form(keys: dict[str, Key]) -> None:
    with pytest.raises(InvalidKey):
        keys["HS256"].public()
    with pytest.raises(InvalidKey):
        keys["HS256"].to_jwk()
    with pytest.raises(InvalidKey):
        keys["HS256"].to_pem()


# -- kid: RFC 7638 thumbprint by default ------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_default_kid_is_the_rfc7638_thumbprint(alg: str, keys: dict[str, Key]) -> None:
    key = keys[alg]
    jwk = key.to_jwk(private=alg == "HS256")
    assert key.kid == rfc7638(jwk)
    assert key.kid == JWKRegistry.import_key(jwk).thumbprint()


def test_rfc7638_example_thumbprint() -> None:
    vector = json.loads((VECTORS / "rfc7638-s3.1-thumbprint.json").read_text())
    assert rfc7638(vector["jwk"]) == vector["thumbprint"]
    assert Key.from_jwk(vector["jwk"]).kid == vector["thumbprint"]


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_kid_is_the_same_for_private_public_and_pem(alg: str, keys: dict[str, Key]) -> None:
    key = keys[alg]
    assert key.public().kid == key.kid
    assert Key.from_pem(key.to_pem()).kid == key.kid


def test_explicit_kid_is_kept() -> None:
    key = Key.generate("EdDSA", kid="2026-05-key-1")
    assert key.kid == "2026-05-key-1"
    assert key.public().kid == "2026-05-key-1"
    assert Key.from_jwk(key.to_jwk()).kid == "2026-05-key-1"
    assert Key.from_pem(key.to_pem(), kid="other").kid == "other"


def test_generated_keys_differ() -> None:
    assert Key.generate("EdDSA").kid != Key.generate("EdDSA").kid
    assert Key.generate("HS256").kid != Key.generate("HS256").kid


# -- strength and binding rules ---------------------------------------------------------------


@pytest.mark.parametrize("bits", [1024, 1536, 2040])
def test_rsa_below_2048_bits_is_refused(bits: int) -> None:
    private = rsa.generate_private_key(65537, bits)
    with pytest.raises(InvalidKey, match="2048"):
        Key.from_pem(pem(private))
    with pytest.raises(InvalidKey, match="2048"):
        Key.from_pem(pem(private, public=True))
    jwk = public_jwk(private)
    with pytest.raises(InvalidKey, match="2048"):
        Key.from_jwk(jwk)


def test_rsa_2048_and_3072_bits_are_accepted() -> None:
    for bits in (2048, 3072):
        key = Key.from_pem(pem(rsa.generate_private_key(65537, bits)))
        assert key.public_key.key_size == bits


@pytest.mark.parametrize(
    "secret",
    [b"", b"x" * 16, b"y" * 31, "z" * 31, "é" * 15],
    ids=["empty", "16-bytes", "31-bytes", "31-chars", "30-bytes-of-15-chars"],
)
def test_hs256_secret_below_32_bytes_is_refused(secret: bytes | str) -> None:
    with pytest.raises(InvalidKey):
        Key.from_secret(secret)
    raw = secret.encode() if isinstance(secret, str) else secret
    with pytest.raises(InvalidKey):
        Key.from_jwk({"kty": "oct", "k": b64url_encode(raw).decode()})


def test_hs256_secret_of_32_bytes_is_accepted() -> None:
    key = Key.from_secret(b"s" * 32)
    assert key.alg == "HS256" and key.is_symmetric
    assert Key.from_secret("é" * 16).alg == "HS256"  # 32 bytes of UTF-8


def _openssh_public(private: Any) -> bytes:
    return bytes(
        private.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
    )


PUBLIC_KEY_SECRETS = [
    pytest.param(lambda k: k.to_pem(), id="pem"),
    pytest.param(lambda k: k.to_pem().decode(), id="pem-str"),
    pytest.param(lambda k: b"\n  " + k.to_pem(), id="pem-leading-whitespace"),
    pytest.param(lambda k: k.to_pem().rstrip(), id="pem-no-trailing-newline"),
]


@pytest.mark.parametrize("victim", ASYMMETRIC)
@pytest.mark.parametrize("encode", PUBLIC_KEY_SECRETS)
def test_hs256_secret_that_is_a_public_key_is_refused(
    victim: str, encode: Any, keys: dict[str, Key]
) -> None:
    secret = encode(keys[victim].public())
    with pytest.raises(InvalidKey, match="public key"):
        Key.from_secret(secret)
    raw = secret.encode() if isinstance(secret, str) else secret
    with pytest.raises(InvalidKey):
        Key.from_jwk({"kty": "oct", "k": b64url_encode(raw).decode(), "alg": "HS256"})


@pytest.mark.parametrize("victim", ASYMMETRIC)
def test_hs256_secret_that_is_a_der_public_key_is_refused(
    victim: str, keys: dict[str, Key]
) -> None:
    der = serialization.load_pem_public_key(keys[victim].to_pem()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(InvalidKey):
        Key.from_secret(der)


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(b"ssh-dss AAAAB3NzaC1kc3MAAACBAP" + b"A" * 40, id="ssh-dss"),
        pytest.param(b'---- BEGIN SSH2 PUBLIC KEY ----\nComment: "x"\nAAAA', id="rfc4716"),
    ],
)
def test_hs256_secret_that_looks_like_a_key_is_refused(secret: bytes) -> None:
    """Markers only joserfc knows: its SecurityWarning becomes a refusal."""
    with pytest.raises(InvalidKey):
        Key.from_secret(secret)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: rsa.generate_private_key(65537, 2048), id="ssh-rsa"),
        pytest.param(ed25519.Ed25519PrivateKey.generate, id="ssh-ed25519"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP256R1()), id="ecdsa-sha2"),
    ],
)
def test_hs256_secret_that_is_an_openssh_public_key_is_refused(make: Any) -> None:
    with pytest.raises(InvalidKey):
        Key.from_secret(_openssh_public(make()))


@pytest.mark.parametrize(
    "curve", [ec.SECP384R1(), ec.SECP521R1(), ec.SECP256K1()], ids=lambda c: c.name
)
def test_es256_with_another_curve_is_refused(curve: ec.EllipticCurve) -> None:
    private = ec.generate_private_key(curve)
    with pytest.raises(InvalidKey):
        Key.from_pem(pem(private))
    with pytest.raises(InvalidKey):
        Key.from_pem(pem(private, public=True), alg="ES256")
    if curve.name != "secp256k1":
        jwk = public_jwk(private)
        with pytest.raises(InvalidKey):
            Key.from_jwk({**jwk, "alg": "ES256"})
        with pytest.raises(InvalidKey):
            Key.from_jwk(jwk, alg="ES256")


@pytest.mark.parametrize(
    ("make", "alg"),
    [
        pytest.param(ed448.Ed448PrivateKey.generate, "EdDSA", id="Ed448-as-EdDSA"),
        pytest.param(x25519.X25519PrivateKey.generate, "EdDSA", id="X25519-as-EdDSA"),
        pytest.param(lambda: rsa.generate_private_key(65537, 2048), "ES256", id="RSA-as-ES256"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP256R1()), "RS256", id="EC-as-RS256"),
        pytest.param(ed25519.Ed25519PrivateKey.generate, "ES256", id="Ed25519-as-ES256"),
        pytest.param(ed25519.Ed25519PrivateKey.generate, "HS256", id="Ed25519-as-HS256"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP256R1()), "none", id="EC-as-none"),
        pytest.param(lambda: rsa.generate_private_key(65537, 2048), "RS512", id="RSA-as-RS512"),
    ],
)
def test_key_bound_to_the_wrong_algorithm_is_refused(make: Any, alg: str) -> None:
    with pytest.raises(InvalidKey):
        Key.from_pem(pem(make()), alg=alg)


def test_jwk_alg_and_requested_alg_must_agree(keys: dict[str, Key]) -> None:
    jwk = keys["ES256"].to_jwk()
    assert Key.from_jwk(jwk, alg="ES256").alg == "ES256"
    with pytest.raises(InvalidKey):
        Key.from_jwk(jwk, alg="RS256")
    with pytest.raises(InvalidKey):
        Key.from_jwk({**jwk, "alg": "EdDSA"})


@pytest.mark.parametrize("alg", ["none", "HS512", "PS256", ""])
def test_generate_refuses_unsupported_algorithms(alg: str) -> None:
    with pytest.raises(InvalidKey):
        Key.generate(alg)


@pytest.mark.parametrize(
    "jwk",
    [
        pytest.param({}, id="empty"),
        pytest.param({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}, id="ec-off-curve"),
        pytest.param({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}, id="okp-short"),
        pytest.param({"kty": "RSA", "n": "AQAB"}, id="rsa-no-e"),
        pytest.param({"kty": "unknown"}, id="unknown-kty"),
    ],
)
def test_unusable_jwk_is_refused(jwk: dict[str, Any]) -> None:
    with pytest.raises(InvalidKey):
        Key.from_jwk(jwk)


def test_pem_of_no_supported_type_is_refused() -> None:
    with pytest.raises(InvalidKey):
        Key.from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(InvalidKey):
        Key.from_pem(pem(x25519.X25519PrivateKey.generate()))


def test_load_refuses_a_jwks_and_bad_json(keys: dict[str, Key], tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(KeySet([keys["EdDSA"]]).to_jwks()))
    with pytest.raises(InvalidKey, match="KeySet"):
        Key.load(jwks)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InvalidKey):
        Key.load(broken)
    with pytest.raises(InvalidKey):
        KeySet.load(broken)


# -- JWKS -------------------------------------------------------------------------------------


def test_jwks_export_has_no_private_member_and_no_secret(keys: dict[str, Key]) -> None:
    keyset = KeySet(keys.values())  # private keys and the HS256 secret, as a server holds them
    jwks = keyset.to_jwks()
    assert sorted(jwk["kid"] for jwk in jwks["keys"]) == sorted(keys[alg].kid for alg in ASYMMETRIC)
    for jwk in jwks["keys"]:
        assert PRIVATE_MEMBERS.isdisjoint(jwk), jwk
        assert jwk["kty"] != "oct"
        assert jwk["use"] == "sig"
        assert jwk["alg"] in ASYMMETRIC
    text = json.dumps(jwks)
    for alg in ALGS:
        private = keys[alg].to_jwk(private=True)
        for member in PRIVATE_MEMBERS & private.keys():
            assert private[member] not in text


def test_jwks_round_trip(keys: dict[str, Key]) -> None:
    keyset = KeySet(keys.values())
    imported = KeySet.from_jwks(json.loads(json.dumps(keyset.to_jwks())))
    assert sorted(k.kid for k in imported) == sorted(keys[a].kid for a in ASYMMETRIC)
    for key in imported:
        assert not key.is_private
        same_signer(keys[key.alg], key)


def test_from_jwks_skips_keys_that_are_not_for_signing(keys: dict[str, Key]) -> None:
    signing = keys["ES256"].to_jwk()
    encryption = {**keys["RS256"].to_jwk(), "use": "enc"}
    no_kid = {k: v for k, v in keys["EdDSA"].to_jwk().items() if k != "kid"}
    odd = {"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AAAA", "y": "AAAA"}
    not_an_object = "key"
    jwks = {"keys": [encryption, signing, no_kid, odd, not_an_object]}
    imported = KeySet.from_jwks(jwks)
    assert [k.kid for k in imported] == [keys["ES256"].kid]
    assert keys["RS256"].kid not in imported
    for bad in (encryption, no_kid, odd, not_an_object):
        with pytest.raises(InvalidKey):
            KeySet.from_jwks({"keys": [signing, bad]}, skip_unusable=False)


def test_published_jwks_never_yields_an_hmac_key(keys: dict[str, Key], tmp_path: Path) -> None:
    # An attacker who can put a secret in a public JWKS (or a careless issuer)
    # must not make verifiers accept HS256 tokens signed with that public secret.
    secret = keys["HS256"].to_jwk(private=True)
    jwks = {"keys": [keys["ES256"].to_jwk(), secret]}
    imported = KeySet.from_jwks(jwks)
    assert [k.kid for k in imported] == [keys["ES256"].kid]
    with pytest.raises(InvalidKey, match="symmetric"):
        KeySet.from_jwks(jwks, skip_unusable=False)
    # The operator's own file may carry one: it is not published.
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(jwks))
    assert keys["HS256"].kid in KeySet.load(path)
    assert keys["HS256"].kid in KeySet.from_jwks(jwks, allow_symmetric=True)


@pytest.mark.parametrize(
    "doc",
    [{}, {"keys": {}}, {"keys": "x"}, [], "keys"],
    ids=["no-keys", "keys-object", "keys-string", "list", "string"],
)
def test_from_jwks_refuses_what_is_not_a_jwks(doc: Any) -> None:
    with pytest.raises(InvalidKey):
        KeySet.from_jwks(doc)


def test_keyset_refuses_two_keys_with_one_kid() -> None:
    a, b = Key.generate("EdDSA", kid="same"), Key.generate("EdDSA", kid="same")
    with pytest.raises(InvalidKey):
        KeySet([a, b])
    keyset = KeySet([a])
    keyset.add(a)  # the same key again is harmless
    assert len(keyset) == 1


def test_keyset_lookup(keys: dict[str, Key]) -> None:
    one = KeySet([keys["EdDSA"]])
    assert one.get(None) is keys["EdDSA"]
    assert one.get(keys["EdDSA"].kid) is keys["EdDSA"]
    assert one.get("other") is None
    many = KeySet(keys.values())
    assert many.get(None) is None  # never a guess among several
    assert keys["RS256"].kid in many and "other" not in many
    assert KeySet().get(None) is None


def test_keyset_load_reads_a_jwks_file(keys: dict[str, Key], tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(KeySet(keys.values()).to_jwks()))
    assert len(KeySet.load(path)) == 3


def test_repr_never_shows_key_material(keys: dict[str, Key]) -> None:
    for alg in ALGS:
        text = repr(keys[alg])
        private = keys[alg].to_jwk(private=True)
        for member in PRIVATE_MEMBERS & private.keys():
            assert private[member] not in text
        assert keys[alg].kid in text
