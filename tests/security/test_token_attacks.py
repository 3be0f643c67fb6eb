"""Every rule of docs/security.md's "Token verification (RFC 8725)", attacked.

Each row is a token an attacker would craft (or, for the claim rules, a token
signed with the issuer's real key so that the rule under test is the only thing
wrong with it). Each is sent to the real SDK-protected service and to the auth
server's own bearer endpoints; every one must be a 401 with
``WWW-Authenticate: Bearer error="invalid_token"`` and a body without internals.
The SDK's rejection counter must name the rule that caught it.

The suite runs against an RS256 server (the classic algorithm-confusion target)
and an ES256 server (the psychic-signature target).
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from authmesh.jose import Key
from support.forge import b64u, hs256, join, raw_header, sign_raw, split, unb64u
from support.security_stack import Stack, assert_invalid_token, start_stack


class KeyServer:
    """The attacker's web server, publishing the attacker's JWKS and certificate.

    A verifier that honoured ``jku``/``x5u`` would fetch from it; ``hits`` counts.
    """

    def __init__(self, jwks: dict[str, Any], cert_pem: bytes) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                body = cert_pem if self.path.endswith(".pem") else json.dumps(jwks).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Target:
    """What an attack needs to know: the real key (for the claim rows) and a live identity."""

    stack: Stack
    key: Key  # the issuer's private signing key (only the claim-rule rows sign with it)
    claims: dict[str, Any]  # the claims of a real, live token of a real user
    genuine: str  # that real token
    attacker: Key  # the attacker's own key of the same algorithm
    attacker_cert: str  # base64 DER of a self-signed certificate for the attacker key
    keyserver: KeyServer

    @property
    def alg(self) -> str:
        return self.key.alg

    @property
    def kid(self) -> str:
        assert self.key.kid is not None
        return self.key.kid

    def header(self, **changes: Any) -> str:
        members: dict[str, Any] = {"alg": self.alg, "kid": self.kid, "typ": "at+jwt"}
        members.update(changes)
        return raw_header(**members)

    def real(self, header: str | None = None, **claim_changes: Any) -> str:
        """Signed with the issuer's key: only the changed part is wrong."""
        claims = {k: v for k, v in {**self.claims, **claim_changes}.items() if v is not DROP}
        return sign_raw(header or self.header(), claims, self.key)

    def forged(self, header: str, **claim_changes: Any) -> str:
        """Signed with the attacker's own key."""
        claims = {**self.claims, "roles": ["admin", "user"], **claim_changes}
        return sign_raw(header, claims, self.attacker)


DROP = object()


def _self_signed(key: Key) -> str:
    private = serialization.load_pem_private_key(key.to_pem(private=True), password=None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auth.example.com")])
    now = time.time()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.fromtimestamp(now - 60, dt.UTC))
        .not_valid_after(dt.datetime.fromtimestamp(now + 3600, dt.UTC))
        .sign(private, hashes.SHA256())  # type: ignore[arg-type]
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@pytest.fixture(scope="module", params=["RS256", "ES256"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    alg: str = request.param
    with start_stack(tmp_path_factory.mktemp(alg), signing_alg=alg) as stack:
        api = stack.api
        name, password = api.new_user("user")
        genuine = api.login(name, password)["access_token"]
        key = api.core.keys.signing_key()
        attacker = Key.generate(alg, kid=f"attacker-{uuid.uuid4().hex[:8]}")
        keyserver = KeyServer({"keys": [attacker.public().to_jwk()]}, b"")
        try:
            yield Target(
                stack=stack,
                key=key,
                claims=split(genuine)[1],
                genuine=genuine,
                attacker=attacker,
                attacker_cert=_self_signed(attacker),
                keyserver=keyserver,
            )
        finally:
            keyserver.close()


# --- the attacks ----------------------------------------------------------------

Attack = Callable[[Target], str]


def _none(alg: str, *, kid: bool = True, signature: bytes = b"") -> Attack:
    def make(t: Target) -> str:
        claims = {**t.claims, "roles": ["admin"]}
        return join(
            raw_header(alg=alg, kid=t.kid if kid else None, typ="at+jwt"), claims, signature
        )

    return make


def _other_alg(t: Target) -> str:
    other = Key.generate("EdDSA")
    return sign_raw(raw_header(alg="EdDSA", kid=t.kid, typ="at+jwt"), t.claims, other)


def _confusion(secret: Callable[[Target], bytes], *, kid: bool = True) -> Attack:
    """HS256 keyed with something public about the issuer's key."""

    def make(t: Target) -> str:
        header = raw_header(alg="HS256", kid=t.kid if kid else None, typ="at+jwt")
        return hs256(header, {**t.claims, "roles": ["admin"]}, secret(t))

    return make


def _public_pem(t: Target) -> bytes:
    return t.key.public().to_pem()


def _public_pem_pkcs1_or_raw(t: Target) -> bytes:
    public = serialization.load_pem_public_key(_public_pem(t))
    if t.alg == "RS256":
        return public.public_bytes(  # type: ignore[union-attr]
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        )
    return public.public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _public_der(t: Target) -> bytes:
    public = serialization.load_pem_public_key(_public_pem(t))
    return public.public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _published_jwk(t: Target) -> bytes:
    jwks = t.stack.api.jwks()
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == t.kid]
    return json.dumps(jwk).encode()


def _psychic(der: bool) -> Attack:
    """CVE-2022-21449: an ECDSA signature with r = s = 0 verified as valid by Java 15-18."""

    def make(t: Target) -> str:
        header = raw_header(alg="ES256", kid=t.kid, typ="at+jwt")
        claims = {**t.claims, "roles": ["admin"]}
        signature = bytes.fromhex("3006020100020100") if der else bytes(64)
        return join(header, claims, signature)

    return make


def _stripped(t: Target) -> str:
    h, p, _ = t.genuine.split(".")
    return f"{h}.{p}."


def _two_parts(t: Target) -> str:
    return t.genuine.rsplit(".", 1)[0]


def _tampered(t: Target) -> str:
    """Privilege escalation: same header and signature, payload with the admin role."""
    h, _, s = t.genuine.split(".")
    claims = {**t.claims, "roles": ["admin", "user"]}
    return f"{h}.{b64u(json.dumps(claims, separators=(',', ':')))}.{s}"


def _key_header(member: str) -> Attack:
    def make(t: Target) -> str:
        url = t.keyserver.url
        value: Any = {
            "jku": f"{url}/jwks.json",
            "x5u": f"{url}/cert.pem",
            "jwk": t.attacker.public().to_jwk(),
            "x5c": [t.attacker_cert],
        }[member]
        return t.forged(raw_header(alg=t.alg, kid=t.attacker.kid, typ="at+jwt", **{member: value}))

    return make


def _jku_with_real_kid(t: Target) -> str:
    header = raw_header(alg=t.alg, kid=t.kid, typ="at+jwt", jku=f"{t.keyserver.url}/jwks.json")
    return t.forged(header)


def _same_kid_other_key(t: Target) -> str:
    return t.forged(t.header())


def _kid(kid: Any, secret: bytes = b"") -> Attack:
    """``kid`` injection, HMAC-signed with what the injected lookup would return."""

    def make(t: Target) -> str:
        header = raw_header(alg="HS256", kid=kid, typ="at+jwt")
        return hs256(header, {**t.claims, "roles": ["admin"]}, secret)

    return make


def _kid_same_alg(kid: str) -> Attack:
    def make(t: Target) -> str:
        return t.forged(raw_header(alg=t.alg, kid=kid, typ="at+jwt"))

    return make


def _crit(t: Target) -> str:
    return t.real(t.header(crit=["exp-x"], **{"exp-x": 1}))


def _b64_false(t: Target) -> str:
    return t.real(t.header(crit=["b64"], b64=False))


def _oversized(t: Target) -> str:
    return t.real(padding="x" * 8500)


def _padded(t: Target) -> str:
    h, p, s = t.real().split(".")
    return f"{h}{'=' * (-len(h) % 4) or '=='}.{p}.{s}"


def _standard_alphabet(t: Target) -> str:
    """The signature in the standard alphabet: the same bytes for a lenient decoder."""
    for n in range(100):
        h, p, sig = t.real(jti=f"jti-{n}").split(".")
        if "-" in sig or "_" in sig:
            return f"{h}.{p}.{sig.replace('-', '+').replace('_', '/')}"
    raise AssertionError("no signature needed - or _")


def _non_canonical_bits(t: Target) -> str:
    """Flip unused trailing bits of the signature: same bytes for a lenient decoder."""
    h, p, s = t.real().split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {2: 4, 3: 2}.get(len(s) % 4)
    assert unused, "the signature length leaves no unused bits"
    index = alphabet.index(s[-1])
    mutated = alphabet[index | ((1 << unused) - 1)]
    if mutated == s[-1]:
        mutated = alphabet[index & ~((1 << unused) - 1)]
    # A lenient decoder reads the same signature bytes: only strictness can refuse it.
    assert unb64u(s[:-1] + mutated) == unb64u(s)
    return f"{h}.{p}.{s[:-1]}{mutated}"


def _duplicate_header(t: Target) -> str:
    header = (
        '{"alg":"' + t.alg + '","kid":"' + t.kid + '","typ":"JWT","typ":"at+jwt"}'
    )  # a lenient parser keeps the last typ, another the first
    return t.real(header)


def _typ(typ: Any) -> Attack:
    def make(t: Target) -> str:
        return t.real(t.header(typ=typ))

    return make


def _claims(**changes: Any) -> Attack:
    def make(t: Target) -> str:
        now = int(time.time())
        values = {k: (v(now) if callable(v) else v) for k, v in changes.items()}
        return t.real(**values)

    return make


def _other_audience(t: Target) -> str:
    """A real token the server issued for the catalog service, replayed at orders."""
    api = t.stack.api
    user, password = api.new_user("user")
    return str(api.login(user, password, audience="catalog")["access_token"])


def _service_token_other_audience(t: Target) -> str:
    return str(t.stack.api.service_token()["access_token"])


def _refresh_token(t: Target) -> str:
    user, password = t.stack.api.new_user("user")
    return str(t.stack.api.login(user, password)["refresh_token"])


def _id_token_like(t: Target) -> str:
    """An OIDC ID token shape (typ JWT, aud = the client, nonce) signed by the issuer."""
    return t.real(t.header(typ="JWT"), aud="web", nonce="n-0S6_WzA2Mj")


ALL = {"orders", "userinfo", "admin", "logout"}
SERVICE = {"orders"}


@dataclass(frozen=True)
class Row:
    attack: Attack
    reason: str | dict[str, str]  # the SDK's reason code, or one per algorithm
    where: frozenset[str] = frozenset(ALL)

    def reason_for(self, alg: str) -> str:
        return self.reason if isinstance(self.reason, str) else self.reason[alg]


ROWS: dict[str, Row] = {
    # alg none, in every spelling (CVE-2015-9235 and friends)
    "alg-none": Row(_none("none"), "alg_not_allowed"),
    "alg-None": Row(_none("None"), "alg_not_allowed"),
    "alg-NONE": Row(_none("NONE"), "alg_not_allowed"),
    "alg-nOnE-no-kid": Row(_none("nOnE", kid=False), "alg_not_allowed"),
    "alg-none-with-signature": Row(_none("none", signature=b"garbage"), "alg_not_allowed"),
    "alg-empty": Row(_none(""), "alg_not_allowed"),
    "alg-unknown-HS1": Row(_none("HS1"), "alg_not_allowed"),
    # an algorithm other than the one bound to the named key, signed by a key of that alg
    "alg-not-bound-to-kid": Row(_other_alg, "alg_not_allowed"),
    # algorithm confusion (CVE-2016-10555): HS256 keyed with the public key
    "confusion-hs256-public-pem": Row(_confusion(_public_pem), "alg_not_allowed"),
    "confusion-hs256-pem-no-newline": Row(
        _confusion(lambda t: _public_pem(t).rstrip(b"\n")), "alg_not_allowed"
    ),
    "confusion-hs256-pkcs1-or-point": Row(_confusion(_public_pem_pkcs1_or_raw), "alg_not_allowed"),
    "confusion-hs256-der": Row(_confusion(_public_der), "alg_not_allowed"),
    "confusion-hs256-jwk-json": Row(_confusion(_published_jwk), "alg_not_allowed"),
    # Without a kid the only key is chosen, and it is bound to its own algorithm.
    "confusion-hs256-pem-no-kid": Row(_confusion(_public_pem, kid=False), "alg_not_allowed"),
    # psychic signature (CVE-2022-21449)
    "psychic-r0-s0-raw": Row(
        _psychic(der=False), {"ES256": "bad_signature", "RS256": "alg_not_allowed"}
    ),
    "psychic-r0-s0-der": Row(
        _psychic(der=True), {"ES256": "bad_signature", "RS256": "alg_not_allowed"}
    ),
    # signature stripping and tampering
    "stripped-signature": Row(_stripped, "bad_signature"),
    "two-segments": Row(_two_parts, "malformed"),
    "tampered-payload-admin-role": Row(_tampered, "bad_signature"),
    "same-kid-attacker-key": Row(_same_kid_other_key, "bad_signature"),
    # attacker-supplied keys (CVE-2018-0114 and jku/x5u SSRF)
    "jku-attacker-jwks": Row(_key_header("jku"), "forbidden_header"),
    "x5u-attacker-cert": Row(_key_header("x5u"), "forbidden_header"),
    "embedded-jwk": Row(_key_header("jwk"), "forbidden_header"),
    "embedded-x5c": Row(_key_header("x5c"), "forbidden_header"),
    "jku-with-real-kid": Row(_jku_with_real_kid, "forbidden_header"),
    # kid injection
    "kid-path-traversal-dev-null": Row(_kid("../../../../../../dev/null"), "unknown_kid"),
    "kid-absolute-path": Row(_kid("/etc/passwd", b"root:x:0:0"), "unknown_kid"),
    "kid-sql-union": Row(_kid("x' UNION SELECT 'secret' -- ", b"secret"), "unknown_kid"),
    "kid-sql-or-true": Row(_kid("' OR '1'='1"), "unknown_kid"),
    "kid-command": Row(_kid("key.pem|curl evil.example"), "unknown_kid"),
    "kid-very-long": Row(_kid_same_alg("k" * 5000), "unknown_kid"),
    "kid-unknown": Row(_kid_same_alg("no-such-key"), "unknown_kid"),
    "kid-empty": Row(_kid_same_alg(""), "unknown_kid"),
    "kid-number": Row(_kid(12345), "unknown_kid"),
    "kid-object": Row(_kid({"$ne": None}), "unknown_kid"),
    # header rules
    "crit-unknown": Row(_crit, "unsupported_crit"),
    "crit-b64-false": Row(_b64_false, "unsupported_crit"),
    "oversized-9k": Row(_oversized, "too_large"),
    "base64-padding": Row(_padded, "malformed"),
    "base64-standard-alphabet": Row(_standard_alphabet, "malformed"),
    "base64-non-canonical-bits": Row(_non_canonical_bits, "malformed"),
    "duplicate-header-member": Row(_duplicate_header, "malformed"),
    "typ-JWT": Row(_typ("JWT"), "wrong_type"),
    "typ-missing": Row(_typ(None), "wrong_type"),
    "typ-id-token": Row(_typ("id_token+jwt"), "wrong_type"),
    "typ-not-a-string": Row(_typ(["at+jwt"]), "wrong_type"),
    "id-token-as-access-token": Row(_id_token_like, "wrong_type"),
    # claim rules
    "iss-evil": Row(_claims(iss="https://evil.example"), "wrong_issuer"),
    "iss-trailing-slash": Row(
        lambda t: t.real(iss=t.claims["iss"] + "/"), "wrong_issuer", frozenset(ALL)
    ),
    "aud-other-service": Row(_claims(aud="catalog"), "wrong_audience", frozenset(SERVICE)),
    "aud-empty-list": Row(_claims(aud=[]), "invalid_claim", frozenset(SERVICE)),
    "expired": Row(_claims(exp=lambda now: now - 3600), "expired"),
    "expired-beyond-leeway": Row(_claims(exp=lambda now: now - 31), "expired"),
    "nbf-future": Row(_claims(nbf=lambda now: now + 3600), "not_yet_valid"),
    "iat-future": Row(_claims(iat=lambda now: now + 3600), "issued_in_future"),
    "exp-not-a-number": Row(_claims(exp="9999999999"), "invalid_claim"),
    "sub-not-a-string": Row(_claims(sub=1), "invalid_claim"),
    **{
        f"missing-{claim}": Row(
            _claims(**{claim: DROP}),
            "missing_claim",
            # The auth server takes tokens for every audience.
            frozenset(SERVICE if claim == "aud" else ALL),
        )
        for claim in ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")
    },
    # real tokens in the wrong place
    "token-for-another-audience": Row(_other_audience, "wrong_audience", frozenset(SERVICE)),
    "service-token-for-catalog": Row(
        _service_token_other_audience, "wrong_audience", frozenset(SERVICE)
    ),
    "refresh-token-as-access-token": Row(_refresh_token, "malformed"),
}


def _send(t: Target, where: str, token: str) -> httpx.Response:
    api, service = t.stack.api, t.stack.service
    auth = {"Authorization": f"Bearer {token}"}
    if where == "orders":
        return service.me(token)
    if where == "userinfo":
        return api.http.get("/userinfo", headers=auth)
    if where == "admin":
        return api.http.get("/admin/users", headers=auth)
    assert where == "logout"
    return api.http.post("/account/logout", headers=auth)


def test_the_genuine_token_and_an_honest_copy_pass(target: Target) -> None:
    """The controls: without the fault, each row's token would be accepted."""
    assert target.stack.service.me(target.genuine).status_code == 200
    assert target.stack.service.me(target.real()).status_code == 200
    assert _send(target, "userinfo", target.real()).status_code == 200
    # The admin endpoint answers 403 (not 401) to a valid non-admin token.
    assert _send(target, "admin", target.real()).status_code == 403


@pytest.mark.parametrize("name", list(ROWS))
def test_attack_is_rejected(target: Target, name: str) -> None:
    row = ROWS[name]
    token = row.attack(target)
    service = target.stack.service
    before = service.rejected()
    for where in sorted(row.where):
        assert_invalid_token(_send(target, where, token))
    after = service.rejected()
    reason = row.reason_for(target.alg)
    assert after.get(reason, 0) == before.get(reason, 0) + 1, (reason, before, after)
    # The forged identity got nowhere: the genuine user's token still works.
    assert service.me(target.genuine).status_code == 200


def test_no_key_url_was_ever_fetched(target: Target) -> None:
    """Neither the service nor the auth server followed ``jku``/``x5u`` (no SSRF)."""
    for name in ("jku-attacker-jwks", "x5u-attacker-cert", "jku-with-real-kid"):
        token = ROWS[name].attack(target)
        for where in sorted(ALL):
            assert_invalid_token(_send(target, where, token))
    assert target.keyserver.hits == []


def test_oversized_header_is_refused_before_parsing(target: Target) -> None:
    """A 100 KB token never reaches the verifier as a 500 or a hang."""
    token = "A" * 100_000 + ".e30.AAAA"
    response = target.stack.service.me(token)
    assert response.status_code in (400, 401, 431), response.status_code
    if response.status_code == 401:
        assert_invalid_token(response)
    response = target.stack.api.http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (400, 401, 431)
