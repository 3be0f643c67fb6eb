"""Strict base64url (RFC 7515 §2, RFC 4648 §5): no padding, no foreign characters.

A canonical check on the unused low bits of the last character matters: without
it, two spellings of the same signature both verify, so a changed token would
still be accepted (a malleability that the tests' one-character mutations find).
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["b64url_decode", "b64url_encode"]

# One pass maps base64url onto the standard alphabet and turns the characters
# base64url does not have ('+', '/', '=') into '!', which the strict decoder
# refuses along with every other foreign byte: a single translate instead of a
# scan per forbidden character.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/!!!")
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Value of each base64url character, -1 for anything else.
_VALUE = [-1] * 256
for _i, _c in enumerate(_ALPHABET):
    _VALUE[_c] = _i
# Mask of the bits a final character must leave zero, and the padding, by len % 4.
_UNUSED_BITS = (0, 0, 0x0F, 0x03)
_PADDING = (b"", b"", b"==", b"=")
_A2B = binascii.a2b_base64


def b64url_encode(data: bytes) -> bytes:
    """Encode without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def b64url_decode(segment: bytes) -> bytes:
    """Decode one unpadded, canonical base64url segment.

    Raises:
        ValueError: a character outside the alphabet, padding, an impossible
            length, or non-zero unused bits in the last character.
    """
    remainder = len(segment) & 3
    if remainder:
        if remainder == 1:
            raise ValueError("not base64url")
        if _VALUE[segment[-1]] & _UNUSED_BITS[remainder]:  # -1 & mask is non-zero
            raise ValueError("not canonical base64url")
    try:
        return _A2B(segment.translate(_TO_STANDARD) + _PADDING[remainder], strict_mode=True)
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc
