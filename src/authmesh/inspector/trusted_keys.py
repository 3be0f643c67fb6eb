"""Trusted keys for ``authmesh token decode``: a JWKS by URL or file, or one key file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from authmesh.errors import ConfigError, InvalidKey
from authmesh.inspector.issuer_http import get_json
from authmesh.jose import Key, KeySet

__all__ = ["fetch_jwks", "load_key", "load_keyset"]

_T = TypeVar("_T")


def load_keyset(source: str, *, timeout: float) -> KeySet:
    """Keys from ``source``: an ``http(s)://`` JWKS URL, or a JWKS, JWK or PEM file.

    Raises:
        ConfigError: the URL cannot be fetched or the file cannot be read.
        InvalidKey: the document holds no usable signing key.
    """
    if source.startswith(("http://", "https://")):
        keys = KeySet.from_jwks(fetch_jwks(source, timeout=timeout))
    else:
        keys = _read(Path(source), KeySet.load)
    if not keys:
        raise InvalidKey(f"{source} holds no usable signing key")
    return keys


def load_key(path: Path) -> KeySet:
    """The key in a JWK or PEM file (an HS256 secret as a JWK ``oct``), as a key set.

    Raises:
        ConfigError: the file cannot be read.
        InvalidKey: it holds no usable key.
    """
    key = _read(path, Key.load)
    return KeySet([key if key.is_symmetric else key.public()])


def fetch_jwks(url: str, *, timeout: float) -> dict[str, Any]:
    """GET a JWKS; a discovery document is followed to its ``jwks_uri``, a lone JWK wrapped.

    Raises:
        ConfigError: unreachable, not a 200, or not a JSON object.
    """
    doc = get_json(url, timeout=timeout)
    if "keys" not in doc and isinstance(doc.get("jwks_uri"), str):
        doc = get_json(doc["jwks_uri"], timeout=timeout)
    if "keys" not in doc and "kty" in doc:
        doc = {"keys": [doc]}
    return doc


def _read(path: Path, load: Callable[[Path], _T]) -> _T:
    """``load(path)``, its failures named after the file."""
    try:
        return load(path)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except InvalidKey as exc:
        raise InvalidKey(f"{path}: {exc}") from None
