"""Passkeys (WebAuthn Level 2 through the ``webauthn`` package): options and checks.

The relying party is the issuer: its host is the RP ID and its origin the only
origin accepted, so an assertion made for another site never verifies here.
Challenges are random, travel in a signed form field with their purpose and
user, and are spent once (see :mod:`authmesh.store.factors`).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

__all__ = [
    "PasskeyError",
    "RelyingParty",
    "VerifiedAssertion",
    "VerifiedRegistration",
    "credential_id_of",
]

_MAX_CREDENTIAL_JSON = 16 * 1024


class PasskeyError(Exception):
    """A registration or assertion that does not verify."""


@dataclass(frozen=True, slots=True)
class VerifiedRegistration:
    """A new credential, ready to store."""

    credential_id: str
    public_key: str
    sign_count: int
    backed_up: bool


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    """A verified use of a stored credential."""

    new_sign_count: int
    backed_up: bool
    user_verified: bool


def _loads(credential_json: str) -> dict[str, object]:
    if len(credential_json) > _MAX_CREDENTIAL_JSON:
        raise PasskeyError("the passkey answer is too large")
    try:
        data = json.loads(credential_json)
    except ValueError:
        raise PasskeyError("the passkey answer is not JSON") from None
    if not isinstance(data, dict):
        raise PasskeyError("the passkey answer is not a credential")
    return data


def credential_id_of(credential_json: str) -> str:
    """The credential id an assertion names (base64url), to find the stored passkey.

    Raises:
        PasskeyError: not a credential.
    """
    data = _loads(credential_json)
    raw = data.get("rawId") or data.get("id")
    if not isinstance(raw, str) or not raw or len(raw) > 1400:
        raise PasskeyError("the passkey answer names no credential")
    return raw


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """This server as a WebAuthn relying party."""

    rp_id: str
    origin: str
    name: str

    @classmethod
    def for_issuer(cls, issuer: str, name: str) -> RelyingParty:
        """The RP of an issuer URL: its host is the RP ID, its origin the expected one."""
        parts = urlsplit(issuer)
        return cls(rp_id=parts.hostname or "", origin=f"{parts.scheme}://{parts.netloc}", name=name)

    @property
    def usable(self) -> bool:
        """Whether browsers will use passkeys here: the RP ID must be a domain name
        (``localhost`` counts), never an IP address."""
        try:
            ipaddress.ip_address(self.rp_id)
        except ValueError:
            return bool(self.rp_id)
        return False

    def registration_options(
        self,
        *,
        challenge: bytes,
        user_id: str,
        username: str,
        existing: list[str],
        discoverable: bool,
    ) -> str:
        """``PublicKeyCredentialCreationOptions`` as JSON for ``navigator.credentials.create``."""
        options = generate_registration_options(
            rp_id=self.rp_id,
            rp_name=self.name,
            user_name=username,
            user_id=user_id.encode(),
            user_display_name=username,
            challenge=challenge,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=(
                    ResidentKeyRequirement.REQUIRED
                    if discoverable
                    else ResidentKeyRequirement.PREFERRED
                ),
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[_descriptor(c) for c in existing],
        )
        return options_to_json(options)

    def authentication_options(self, *, challenge: bytes, allowed: list[str]) -> str:
        """``PublicKeyCredentialRequestOptions`` as JSON for ``navigator.credentials.get``;
        ``allowed`` empty lets the browser offer any passkey of this site (passwordless)."""
        options = generate_authentication_options(
            rp_id=self.rp_id,
            challenge=challenge,
            allow_credentials=[_descriptor(c) for c in allowed],
            user_verification=(
                UserVerificationRequirement.PREFERRED
                if allowed
                else UserVerificationRequirement.REQUIRED
            ),
        )
        return options_to_json(options)

    def verify_registration(self, credential_json: str, challenge: bytes) -> VerifiedRegistration:
        """Raises:
        PasskeyError: wrong challenge, origin or RP ID, or a malformed answer.
        """
        try:
            verified = verify_registration_response(
                credential=_loads(credential_json),
                expected_challenge=challenge,
                expected_rp_id=self.rp_id,
                expected_origin=self.origin,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            raise PasskeyError(f"the passkey could not be registered: {exc}"[:200]) from None
        return VerifiedRegistration(
            credential_id=bytes_to_base64url(verified.credential_id),
            public_key=bytes_to_base64url(verified.credential_public_key),
            sign_count=verified.sign_count,
            backed_up=verified.credential_backed_up,
        )

    def verify_assertion(
        self,
        credential_json: str,
        challenge: bytes,
        *,
        public_key: str,
        sign_count: int,
        require_user_verification: bool,
    ) -> VerifiedAssertion:
        """Raises:
        PasskeyError: wrong challenge, origin, RP ID, signature or counter.
        """
        try:
            verified = verify_authentication_response(
                credential=_loads(credential_json),
                expected_challenge=challenge,
                expected_rp_id=self.rp_id,
                expected_origin=self.origin,
                credential_public_key=base64url_to_bytes(public_key),
                credential_current_sign_count=sign_count,
                require_user_verification=require_user_verification,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            raise PasskeyError(f"the passkey could not be checked: {exc}"[:200]) from None
        return VerifiedAssertion(
            new_sign_count=verified.new_sign_count,
            backed_up=verified.credential_backed_up,
            user_verified=verified.user_verified,
        )


def _descriptor(credential_id: str) -> PublicKeyCredentialDescriptor:
    return PublicKeyCredentialDescriptor(id=base64url_to_bytes(credential_id))
