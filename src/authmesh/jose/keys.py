"""Signing keys: one ``kid``, exactly one algorithm, parsed once.

JWK and PEM import/export and RFC 7638 thumbprints come from joserfc; the parsed
``cryptography`` key objects are kept on the :class:`Key` so that signing and
verifying never re-parse anything.
"""

from __future__ import annotations

import json
import os
import secrets
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, JWKRegistry, OctKey, OKPKey, RSAKey

from authmesh.errors import InvalidKey
from authmesh.jose.algorithms import ALGORITHMS, Algorithm

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "MIN_HMAC_SECRET_BYTES",
    "MIN_RSA_BITS",
    "SUPPORTED_ALGORITHMS",
    "Key",
]

SUPPORTED_ALGORITHMS: tuple[str, ...] = ("EdDSA", "ES256", "RS256", "HS256")
ASYMMETRIC_ALGORITHMS: frozenset[str] = frozenset({"EdDSA", "ES256", "RS256"})
MIN_RSA_BITS = 2048
MIN_HMAC_SECRET_BYTES = 32

_JoseKey = OKPKey | ECKey | RSAKey | OctKey
# Secrets that are really public keys: an HMAC keyed with one is algorithm confusion.
_PUBLIC_KEY_MARKERS = (b"-----BEGIN", b"ssh-rsa", b"ssh-ed25519", b"ecdsa-sha2-")


@contextmanager
def _weak_keys_refused() -> Iterator[None]:
    """Turn joserfc's SecurityWarnings during an import into :class:`InvalidKey`.

    joserfc only warns about an RSA key under 2048 bits, a short secret or a secret
    that looks like a key; a warning is no refusal (and under ``-W error`` it
    escapes as a non-authmesh exception). Our own checks usually refuse first,
    with a clearer message; this catches whatever they do not know about
    (``ssh-dss``, RFC 4716 public keys).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SecurityWarning)
        yield
    for warning in caught:
        if issubclass(warning.category, SecurityWarning):
            raise InvalidKey(f"unsafe key: {warning.message}")
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def _infer_alg(jose_key: _JoseKey) -> str:
    if isinstance(jose_key, OKPKey):
        return "EdDSA"
    if isinstance(jose_key, ECKey):
        return "ES256"
    if isinstance(jose_key, RSAKey):
        return "RS256"
    return "HS256"


class Key:
    """A JWS key bound to one algorithm and one ``kid``.

    Build one with :meth:`generate`, :meth:`from_jwk`, :meth:`from_pem`,
    :meth:`from_secret` or :meth:`load`; never call the constructor directly.
    """

    __slots__ = ("_jose", "_sign_key", "_verify_key", "alg", "algorithm", "kid")

    alg: str
    kid: str
    algorithm: Algorithm

    def __init__(self, jose_key: _JoseKey, alg: str, kid: str | None = None) -> None:
        if alg not in ALGORITHMS:
            raise InvalidKey(f"unsupported algorithm {alg!r}; use one of {SUPPORTED_ALGORITHMS}")
        algorithm = ALGORITHMS[alg]
        if jose_key.key_type != algorithm.kty:
            raise InvalidKey(f"a {jose_key.key_type} key cannot be used with {alg}")
        self._jose = jose_key
        self.alg = alg
        self.algorithm = algorithm
        self._check_strength()
        self.kid = kid or str(jose_key.kid or jose_key.thumbprint())
        if isinstance(jose_key, OctKey):
            self._sign_key: Any = jose_key.raw_value
            self._verify_key: Any = jose_key.raw_value
        else:
            self._sign_key = jose_key.private_key if jose_key.is_private else None
            self._verify_key = jose_key.public_key

    def _check_strength(self) -> None:
        raw: Any = self._jose.raw_value
        if self.alg == "RS256":
            size = raw.key_size
            if size < MIN_RSA_BITS:
                raise InvalidKey(f"RSA keys need at least {MIN_RSA_BITS} bits, this has {size}")
        elif self.alg == "ES256":
            curve = raw.curve
            if not isinstance(curve, ec.SECP256R1):
                raise InvalidKey(f"ES256 needs a P-256 key, not {curve.name}")
        elif self.alg == "EdDSA":
            if not isinstance(raw, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
                raise InvalidKey("EdDSA keys must be Ed25519")
        else:
            secret: bytes = raw
            if len(secret) < MIN_HMAC_SECRET_BYTES:
                raise InvalidKey(
                    f"HS256 secrets need at least {MIN_HMAC_SECRET_BYTES} bytes, "
                    f"this has {len(secret)}"
                )
            if secret.lstrip().startswith(_PUBLIC_KEY_MARKERS):
                raise InvalidKey("an HS256 secret must not be a PEM or SSH public key")

    # -- construction -------------------------------------------------------------

    @classmethod
    def generate(cls, alg: str = "EdDSA", *, kid: str | None = None) -> Key:
        """Make a new private key (or secret) for ``alg``."""
        jose_key: _JoseKey
        if alg == "EdDSA":
            jose_key = OKPKey.generate_key("Ed25519")
        elif alg == "ES256":
            jose_key = ECKey.generate_key("P-256")
        elif alg == "RS256":
            jose_key = RSAKey.generate_key(MIN_RSA_BITS)
        elif alg == "HS256":
            jose_key = OctKey.import_key(secrets.token_bytes(MIN_HMAC_SECRET_BYTES))
        else:
            raise InvalidKey(f"unsupported algorithm {alg!r}; use one of {SUPPORTED_ALGORITHMS}")
        return cls(jose_key, alg, kid)

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any], *, alg: str | None = None) -> Key:
        """Import a JWK (RFC 7517); ``alg`` defaults to the JWK's ``alg`` or its key type's."""
        data = dict(jwk)
        jwk_alg = data.get("alg")
        if alg and jwk_alg and alg != jwk_alg:
            raise InvalidKey(f"the JWK is bound to {jwk_alg}, not {alg}")
        with _weak_keys_refused():
            try:
                jose_key = JWKRegistry.import_key(data)
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise InvalidKey(f"not a usable JWK: {exc}") from None
            if not isinstance(jose_key, OKPKey | ECKey | RSAKey | OctKey):
                raise InvalidKey("unsupported JWK key type")
            kid = data.get("kid")
            return cls(jose_key, alg or jwk_alg or _infer_alg(jose_key), kid if kid else None)

    @classmethod
    def from_pem(cls, pem: bytes | str, *, alg: str | None = None, kid: str | None = None) -> Key:
        """Import a PEM private or public key (PKCS#8, SPKI, PKCS#1 or SEC1)."""
        data = pem.encode() if isinstance(pem, str) else pem
        jose_key: _JoseKey | None = None
        with _weak_keys_refused():
            for key_cls in (OKPKey, ECKey, RSAKey):
                try:
                    jose_key = key_cls.import_key(data)
                    break
                except (JoseError, ValueError, TypeError):
                    continue
            if jose_key is None:
                raise InvalidKey("not a PEM key of a supported type (Ed25519, P-256, RSA)")
            return cls(jose_key, alg or _infer_alg(jose_key), kid)

    @classmethod
    def from_secret(cls, secret: bytes | str, *, kid: str | None = None) -> Key:
        """An HS256 key from a shared secret of at least 32 bytes."""
        raw = secret.encode() if isinstance(secret, str) else secret
        if raw.lstrip().startswith(_PUBLIC_KEY_MARKERS):
            raise InvalidKey("an HS256 secret must not be a PEM or SSH public key")
        if len(raw) < MIN_HMAC_SECRET_BYTES:
            raise InvalidKey(
                f"HS256 secrets need at least {MIN_HMAC_SECRET_BYTES} bytes, this has {len(raw)}"
            )
        with _weak_keys_refused():
            try:
                # joserfc also refuses DER public keys and certificates here.
                jose_key = OctKey.import_key(raw)
            except (JoseError, ValueError, TypeError) as exc:
                raise InvalidKey(f"not a usable HS256 secret: {exc}") from None
            return cls(jose_key, "HS256", kid)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, alg: str | None = None) -> Key:
        """Read a key file: a JWK (JSON) or a PEM key."""
        data = Path(path).read_bytes()
        if data.lstrip().startswith(b"{"):
            try:
                jwk = json.loads(data)
            except ValueError as exc:
                raise InvalidKey(f"{path}: not valid JSON: {exc}") from None
            if not isinstance(jwk, dict) or "keys" in jwk:
                raise InvalidKey(f"{path}: expected a single JWK object (use KeySet for a JWKS)")
            return cls.from_jwk(jwk, alg=alg)
        return cls.from_pem(data, alg=alg)

    # -- use ---------------------------------------------------------------------

    @property
    def is_private(self) -> bool:
        """Whether this key can sign."""
        return self._sign_key is not None

    @property
    def is_symmetric(self) -> bool:
        """Whether this is a shared secret (HS256), never to be published."""
        return self.alg == "HS256"

    def sign(self, data: bytes) -> bytes:
        """Sign ``data``.

        Raises:
            InvalidKey: this is a public key.
        """
        if self._sign_key is None:
            raise InvalidKey(f"key {self.kid} is public and cannot sign")
        return self.algorithm.sign(self._sign_key, data)

    def verify(self, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` over ``data`` is valid for this key."""
        return self.algorithm.verify(self._verify_key, data, signature)

    def thumbprint(self) -> str:
        """The RFC 7638 SHA-256 thumbprint of the public key, base64url (DPoP's ``jkt``)."""
        return str(self._jose.thumbprint())

    def public(self) -> Key:
        """This key without its private part.

        Raises:
            InvalidKey: an HS256 secret has no public part.
        """
        if self.is_symmetric:
            raise InvalidKey("an HS256 secret has no public part")
        jwk = self._jose.as_dict(private=False)
        return Key(JWKRegistry.import_key(jwk), self.alg, self.kid)

    def to_jwk(self, *, private: bool = False) -> dict[str, Any]:
        """The key as a JWK with ``kid``, ``alg`` and ``use``.

        Raises:
            InvalidKey: the public JWK of an HS256 secret is asked for.
        """
        if self.is_symmetric and not private:
            raise InvalidKey("an HS256 secret has no public JWK; it must never be published")
        if private and not self.is_private:
            raise InvalidKey(f"key {self.kid} has no private part")
        jwk = dict(self._jose.as_dict(private=private))
        jwk.update(kid=self.kid, alg=self.alg, use="sig")
        return jwk

    def to_pem(self, *, private: bool = False) -> bytes:
        """The key in PEM (PKCS#8 private, SPKI public).

        Raises:
            InvalidKey: HS256 secrets have no PEM form.
        """
        jose_key = self._jose
        # An OctKey is exactly an HS256 secret: the constructor ties kty to alg.
        if isinstance(jose_key, OctKey):
            raise InvalidKey("HS256 secrets have no PEM form")
        if private and not self.is_private:
            raise InvalidKey(f"key {self.kid} has no private part")
        return bytes(jose_key.as_pem(private=private))

    @property
    def public_key(self) -> Any:
        """The parsed ``cryptography`` public key (bytes for HS256)."""
        return self._verify_key

    def __repr__(self) -> str:
        kind = "private" if self.is_private else "public"
        return f"Key(kid={self.kid!r}, alg={self.alg!r}, {kind})"
