"""What a verifier demands of a token beyond its signature."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from authmesh.errors import ConfigError
from authmesh.jose.keys import SUPPORTED_ALGORITHMS

__all__ = ["ACCESS_TOKEN_CLAIMS", "ACCESS_TOKEN_TYPES", "Clock", "VerifyPolicy"]

Clock = Callable[[], float]

#: RFC 9068 §2.2: the claims every JWT access token carries.
ACCESS_TOKEN_CLAIMS: frozenset[str] = frozenset(
    {"iss", "exp", "aud", "sub", "client_id", "iat", "jti"}
)
#: RFC 9068 §2.1 with RFC 7515 §4.1.9's optional ``application/`` prefix.
ACCESS_TOKEN_TYPES: frozenset[str] = frozenset({"at+jwt", "application/at+jwt"})


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyPolicy:
    """Rules a token must meet (RFC 8725). Defaults fit RFC 9068 access tokens.

    Args:
        issuer: the only accepted ``iss``; ``None`` skips the check (inspection only).
        audience: accepted ``aud`` values (any one must match); ``None`` skips the check.
        types: accepted ``typ`` values, compared case-insensitively; ``None`` skips it.
        algorithms: algorithms this verifier accepts at all.
        required_claims: claims that must be present.
        leeway: seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
        max_token_bytes: longer tokens are refused before any parsing.
    """

    issuer: str | None = None
    audience: frozenset[str] | None = None
    types: frozenset[str] | None = ACCESS_TOKEN_TYPES
    algorithms: frozenset[str] = frozenset(SUPPORTED_ALGORITHMS)
    required_claims: frozenset[str] = frozenset({"exp"})
    leeway: float = 30.0
    max_token_bytes: int = 8192
    _types_lower: frozenset[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = set(self.algorithms) - set(SUPPORTED_ALGORITHMS)
        if unknown or not self.algorithms:
            raise ConfigError(
                f"algorithms must be a non-empty subset of {SUPPORTED_ALGORITHMS}, "
                f"got {sorted(self.algorithms)}"
            )
        if self.leeway < 0 or self.leeway > 300:
            raise ConfigError("leeway must be between 0 and 300 seconds")
        if self.max_token_bytes < 64:
            raise ConfigError("max_token_bytes must be at least 64")
        if isinstance(self.audience, str):
            raise ConfigError("audience must be a set of strings, not a string")
        lowered = None if self.types is None else frozenset(t.lower() for t in self.types)
        object.__setattr__(self, "_types_lower", lowered)

    @classmethod
    def for_access_tokens(
        cls,
        *,
        issuer: str,
        audience: str | frozenset[str] | set[str],
        leeway: float = 30.0,
        algorithms: frozenset[str] | None = None,
        max_token_bytes: int = 8192,
    ) -> VerifyPolicy:
        """The policy a resource server applies to RFC 9068 access tokens."""
        aud = frozenset({audience}) if isinstance(audience, str) else frozenset(audience)
        return cls(
            issuer=issuer,
            audience=aud,
            types=ACCESS_TOKEN_TYPES,
            algorithms=algorithms or frozenset(SUPPORTED_ALGORITHMS),
            required_claims=ACCESS_TOKEN_CLAIMS,
            leeway=leeway,
            max_token_bytes=max_token_bytes,
        )

    def type_allowed(self, typ: object) -> bool:
        """Whether a header ``typ`` passes."""
        if self._types_lower is None:
            return True
        return isinstance(typ, str) and typ.lower() in self._types_lower
