"""The attacker's toolkit: JWS built by hand, byte for byte, as exploit code does it.

Nothing here goes through :func:`authmesh.jose.sign_jwt` (which refuses to build
most of these tokens); headers are raw JSON text so that duplicate members and
odd encodings survive.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from authmesh.jose import Key

__all__ = ["b64u", "hs256", "join", "raw_header", "sign_raw", "split", "unb64u"]


def b64u(data: bytes | str) -> str:
    """Canonical base64url without padding (RFC 7515 §2)."""
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    """Lenient base64url decoding (for reading our own tokens)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_header(**members: Any) -> str:
    """A compact JSON header; ``None`` values are dropped."""
    return json.dumps({k: v for k, v in members.items() if v is not None}, separators=(",", ":"))


def join(header: str, claims: dict[str, Any] | str, signature: bytes = b"") -> str:
    """``header.payload.signature`` from a header text, claims and signature bytes."""
    payload = claims if isinstance(claims, str) else json.dumps(claims, separators=(",", ":"))
    return f"{b64u(header)}.{b64u(payload)}.{b64u(signature)}"


def split(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """Header, claims and signature of a token (unverified)."""
    h, p, s = token.split(".")
    return json.loads(unb64u(h)), json.loads(unb64u(p)), unb64u(s)


def signing_input(header: str, claims: dict[str, Any] | str) -> bytes:
    """The bytes a JWS signature covers."""
    return join(header, claims).rsplit(".", 1)[0].encode("ascii")


def sign_raw(header: str, claims: dict[str, Any] | str, key: Key) -> str:
    """A token whose header text is exactly ``header``, signed by ``key``."""
    data = signing_input(header, claims)
    h, p = data.decode().split(".")
    return f"{h}.{p}.{b64u(key.sign(data))}"


def hs256(header: str, claims: dict[str, Any] | str, secret: bytes) -> str:
    """A token HMAC-SHA256-signed with any bytes as the secret (algorithm confusion)."""
    data = signing_input(header, claims)
    h, p = data.decode().split(".")
    return f"{h}.{p}.{b64u(hmac.new(secret, data, hashlib.sha256).digest())}"
