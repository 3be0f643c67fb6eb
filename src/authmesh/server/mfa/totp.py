"""TOTP (RFC 6238): secrets, the ``otpauth://`` URI, its QR code, and checking a code.

Codes are 6 digits over 30-second steps; one step of clock drift either way is
accepted. The step a code belongs to is returned so the caller can refuse any
code of that step or an earlier one afterwards (each code works once).
"""

from __future__ import annotations

import hmac

import pyotp
import segno

__all__ = ["DIGITS", "STEP", "matching_step", "new_totp_secret", "provisioning_uri", "qr_svg"]

STEP = 30
DIGITS = 6
_DRIFT = 1


def new_totp_secret() -> str:
    """A fresh 160-bit secret in base32 (RFC 4226 §4 recommends 160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, *, username: str, issuer_name: str) -> str:
    """The ``otpauth://totp/…`` URI authenticator apps read from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(
        name=username, issuer_name=issuer_name
    )


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as inline SVG markup (no script, no image request)."""
    svg: str = segno.make(uri, error="m").svg_inline(
        scale=4, title="QR code to scan with an authenticator app", dark="#000", light="#fff"
    )
    return svg.replace(
        "<svg ", '<svg role="img" aria-label="QR code for your authenticator app" ', 1
    )


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step whose code is ``code`` (within the drift), or ``None``."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    current = int(now // STEP)
    found = None
    # Every step is compared, in constant time, so timing does not tell which matched.
    for step in range(current - _DRIFT, current + _DRIFT + 1):
        if hmac.compare_digest(totp.generate_otp(step).encode(), code.encode()):
            found = step
    return found
