"""The inspector's verdict on a token: valid, invalid (and why), or only decoded."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from authmesh.inspector.findings import Inspection
from authmesh.inspector.hints import hint_for
from authmesh.jose import KeySet, TokenRejected, TokenRevoked, VerifyPolicy, verify_jwt

__all__ = ["Status", "Verdict", "after_introspection", "judge"]

Status = Literal["valid", "invalid", "unverified", "undecodable"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What the inspector concluded.

    Attributes:
        status: ``valid`` and ``invalid`` after verification; ``unverified`` when no
            key was given; ``undecodable`` when no key was given and the token cannot
            even be read.
        reason: the rejection's reason code (``expired``, ``unknown_kid``…).
        message: the rejection's message.
        hint: what to check next.
        kid: the key that verified the token.
        alg: its algorithm.
        unchecked: rules skipped for want of an option (``iss``, ``aud``, ``typ``).
        introspected_at: the introspection endpoint that said whether the token is
            still active; ``None`` when revocation was not checked.
    """

    status: Status
    reason: str | None = None
    message: str | None = None
    hint: str | None = None
    kid: str | None = None
    alg: str | None = None
    unchecked: tuple[str, ...] = ()
    introspected_at: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the exit status is 0."""
        return self.status in ("valid", "unverified")


def judge(
    token: str, seen: Inspection, keys: KeySet | None, policy: VerifyPolicy, now: float
) -> Verdict:
    """Verify ``token`` against ``keys`` under ``policy`` (or only report decodability)."""
    if keys is None:
        if seen.decoded:
            return Verdict(status="unverified")
        problems = "; ".join(p.message for p in seen.problems[:3])
        return Verdict(
            status="undecodable",
            reason="malformed",
            message="the token cannot be decoded",
            hint=problems or None,
        )
    unchecked = tuple(
        name
        for name, skipped in (
            ("iss", policy.issuer is None),
            ("aud", policy.audience is None),
            ("typ", policy.types is None),
        )
        if skipped
    )
    try:
        verified = verify_jwt(token, keys, policy, clock=lambda: now)
    except TokenRejected as exc:
        hint = hint_for(exc.reason, seen, keys, policy, now)
        return Verdict(
            status="invalid", reason=exc.reason, message=exc.message, hint=hint, unchecked=unchecked
        )
    return Verdict(status="valid", kid=verified.kid, alg=verified.alg, unchecked=unchecked)


def after_introspection(verdict: Verdict, *, endpoint: str, active: bool) -> Verdict:
    """The verdict on a valid token once ``endpoint`` said whether it is still active.

    A token that verifies but is not active was revoked: its user was blocked,
    its session ended, or the token itself was revoked.
    """
    if active:
        return replace(verdict, introspected_at=endpoint)
    revoked = TokenRevoked()
    return Verdict(
        status="invalid",
        reason=revoked.reason,
        message=revoked.message,
        hint=f"{endpoint} says the token is not active: it was revoked, its session "
        "ended or its user was blocked",
        unchecked=verdict.unchecked,
        introspected_at=endpoint,
    )
