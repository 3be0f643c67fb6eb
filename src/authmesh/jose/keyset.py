"""A set of keys by ``kid``, with JWKS export (public members only) and import."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from authmesh.errors import InvalidKey
from authmesh.jose.keys import Key

__all__ = ["KeyResolver", "KeySet"]


class KeyResolver(Protocol):
    """Finds the trusted key a token names; ``None`` when the ``kid`` is unknown.

    ``kid`` is ``None`` for a token whose header has none: a resolver may answer
    with its only key then, never with a guess among several.
    """

    def get(self, kid: str | None) -> Key | None:
        """The key with this ``kid``, or ``None``."""
        ...


class KeySet:
    """Trusted keys indexed by ``kid``; a ``kid`` appears once."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[Key] = ()) -> None:
        self._keys: dict[str, Key] = {}
        for key in keys:
            self.add(key)

    def add(self, key: Key) -> None:
        """Add a key.

        Raises:
            InvalidKey: another key already has this ``kid``.
        """
        existing = self._keys.get(key.kid)
        if existing is not None and existing is not key:
            raise InvalidKey(f"two keys share the kid {key.kid!r}")
        self._keys[key.kid] = key

    def get(self, kid: str | None) -> Key | None:
        """The key with this ``kid``; for ``None``, the only key if there is exactly one."""
        if kid is None:
            if len(self._keys) == 1:
                return next(iter(self._keys.values()))
            return None
        return self._keys.get(kid)

    def __iter__(self) -> Iterator[Key]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def to_jwks(self) -> dict[str, Any]:
        """The public JWKS (RFC 7517 §5): asymmetric keys only, never a private member."""
        return {"keys": [key.to_jwk(private=False) for key in self if not key.is_symmetric]}

    @classmethod
    def from_jwks(
        cls,
        jwks: Mapping[str, Any],
        *,
        skip_unusable: bool = True,
        allow_symmetric: bool = False,
    ) -> KeySet:
        """Import a JWKS.

        Keys for other uses (``use`` other than ``sig``), of unsupported types or
        without a ``kid`` are skipped when ``skip_unusable`` (a verifier must not
        fail because the issuer also publishes an encryption key).

        Symmetric (``oct``) keys are unusable unless ``allow_symmetric``: a JWKS is
        usually published, and an HMAC secret anyone can read lets anyone sign.
        Only a local file the operator wrote (:meth:`load`) may carry one.

        Raises:
            InvalidKey: the document is not a JWKS, or a key is unusable and
                ``skip_unusable`` is false.
        """
        keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
        if not isinstance(keys, list):
            raise InvalidKey("not a JWKS: expected an object with a 'keys' list")
        result = cls()
        for jwk in keys:
            try:
                if not isinstance(jwk, Mapping):
                    raise InvalidKey("a JWKS entry is not an object")
                if jwk.get("use", "sig") != "sig" or not jwk.get("kid"):
                    raise InvalidKey("a JWKS entry is not a signing key with a kid")
                if jwk.get("kty") == "oct" and not allow_symmetric:
                    raise InvalidKey("a published JWKS must not hold a symmetric (oct) key")
                result.add(Key.from_jwk(jwk))
            except InvalidKey:
                if not skip_unusable:
                    raise
        return result

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeySet:
        """Read a JWKS file, a single JWK file, or a PEM key file."""
        data = Path(path).read_bytes()
        if data.lstrip().startswith(b"{"):
            try:
                doc = json.loads(data)
            except ValueError as exc:
                raise InvalidKey(f"{path}: not valid JSON: {exc}") from None
            if isinstance(doc, dict) and "keys" in doc:
                return cls.from_jwks(doc, allow_symmetric=True)
        return cls([Key.load(path)])
