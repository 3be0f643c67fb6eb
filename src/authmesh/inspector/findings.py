"""What the inspector finds in a token: its parts, its structural problems, what it leaks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Inspection", "Problem", "SensitiveClaim"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """A structural fault of a token.

    Attributes:
        code: a stable identifier, e.g. ``"bad_base64"`` or ``"alg_none"``.
        part: where it is: ``"token"``, ``"header"``, ``"payload"`` or ``"signature"``.
        message: a sentence for a person.
    """

    code: str
    part: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SensitiveClaim:
    """A member whose name or value looks like data a token must not carry in clear.

    Attributes:
        location: ``"header"`` or ``"payload"``.
        path: the member, e.g. ``"password"`` or ``"profile.cards[0]"``.
        category: ``"secret"``, ``"private key"``, ``"payment card"``,
            ``"government id"`` or ``"personal data"``.
        message: why it matters.
    """

    location: str
    path: str
    category: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Inspection:
    """What an unverified token contains.

    Attributes:
        header: the header, when it decodes to a JSON object.
        payload: the claims, when they decode to a JSON object.
        header_text: the decoded header when it is not a JSON object (else ``None``).
        payload_text: the decoded payload when it is not a JSON object (else ``None``).
        signature_length: bytes of the decoded signature; ``None`` if absent or undecodable.
        segments: how many dot-separated parts the token has (a JWS has 3).
        size: the token's length in characters.
        problems: structural faults, in the order found.
        sensitive: members that look like secrets or personal data.
    """

    header: dict[str, Any] | None
    payload: dict[str, Any] | None
    header_text: str | None
    payload_text: str | None
    signature_length: int | None
    segments: int
    size: int
    problems: tuple[Problem, ...]
    sensitive: tuple[SensitiveClaim, ...]

    @property
    def decoded(self) -> bool:
        """Whether both the header and the payload are JSON objects."""
        return self.header is not None and self.payload is not None
