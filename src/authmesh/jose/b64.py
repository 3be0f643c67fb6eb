"""Strict base64url (RFC 7515 §2, RFC 4648 §5): no padding, no foreign characters.

A canonical check on the unused low bits of the last character matters: without
it, two spellings of the same signature both verify, so a changed token would
still be accepted (a malleability that the tests' one-character mutations find).
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["b64url_decode", "b64url_encode"]

_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Value of each base64url character, -1 for anything else.
_VALUE = [-1] * 256
for _i, _c in enumerate(_ALPHABET):
    _VALUE[_c] = _i
# Mask of the bits a final character must leave zero, by len % 4.
_UNUSED_BITS = {2: 0x0F, 3: 0x03}


def b64url_encode(data: bytes) -> bytes:
    """Encode without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def b64url_decode(segment: bytes) -> bytes:
    """Decode one unpadded, canonical base64url segment.

    Raises:
        ValueError: a character outside the alphabet, padding, an impossible
            length, or non-zero unused bits in the last character.
    """
    remainder = len(segment) % 4
    # The standard alphabet's '+' and '/' would survive the translation below.
    if remainder == 1 or b"+" in segment or b"/" in segment or b"=" in segment:
        raise ValueError("not base64url")
    if remainder:
        if _VALUE[segment[-1]] & _UNUSED_BITS[remainder]:  # -1 & mask is non-zero too
            raise ValueError("not canonical base64url")
        segment += b"=" * (4 - remainder)
    try:
        return binascii.a2b_base64(segment.translate(_TO_STANDARD), strict_mode=True)
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc
