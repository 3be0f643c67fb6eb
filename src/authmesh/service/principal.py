"""Who is calling: :class:`Principal`, built from a verified access token, and the
role/scope check every adapter applies (:class:`AccessRule`, :func:`check_access`)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypedDict, Unpack

from authmesh.acr import satisfies
from authmesh.jose.errors import InvalidClaim
from authmesh.service.errors import InsufficientScope, InsufficientUserAuthentication

__all__ = ["AccessRule", "AccessRuleArgs", "Delegation", "Principal", "check_access"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """The caller proven by a verified RFC 9068 access token.

    Also satisfies Starlette's ``BaseUser`` duck type (``is_authenticated``,
    ``display_name``, ``identity``), so ``request.user`` works.
    """

    subject: str
    """``sub``: the user id, or the client id for a client_credentials token."""
    client_id: str
    """``client_id``: the OAuth client the token was issued to (RFC 9068 §2.2)."""
    roles: frozenset[str]
    """``roles`` (RFC 9068 §2.2.3.1 / RFC 7643 §4.1.2)."""
    scopes: frozenset[str]
    """``scope``, split on spaces (RFC 8693 §4.2, RFC 9068 §2.2.3)."""
    session_id: str | None
    """``sid``: the login session; ``None`` for client_credentials tokens."""
    token_id: str
    """``jti``."""
    issued_at: float
    expires_at: float
    audience: tuple[str, ...]
    claims: Mapping[str, Any] = field(repr=False, compare=False)
    """Every claim of the token (read-only)."""
    token: str = field(repr=False)
    """The raw access token, e.g. to forward it downstream."""
    dpop_jkt: str | None = None
    """``cnf.jkt``: the DPoP key the token is bound to (RFC 9449 §6); ``None`` when unbound."""
    actor_chain: tuple[str, ...] = ()
    """The services acting for the subject (``act``, RFC 8693 §4.1), the one calling now
    first; empty when the token was not delegated through token exchange."""

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], token: str) -> Principal:
        """Build from claims that passed :func:`authmesh.jose.verify_jwt` for access tokens.

        Raises:
            InvalidClaim: ``roles`` is not a list of strings.
        """
        roles = claims.get("roles", ())
        if not isinstance(roles, list | tuple) or not all(isinstance(r, str) for r in roles):
            raise InvalidClaim("the 'roles' claim must be a list of strings")
        scope = claims.get("scope") or ""
        aud = claims["aud"]
        return cls(
            subject=claims["sub"],
            client_id=claims["client_id"],
            roles=frozenset(roles),
            scopes=frozenset(scope.split()),
            session_id=claims.get("sid"),
            token_id=claims["jti"],
            issued_at=float(claims["iat"]),
            expires_at=float(claims["exp"]),
            audience=(aud,) if isinstance(aud, str) else tuple(aud),
            # verify_jwt's dict is fresh and ours: a read-only view, no copy.
            claims=MappingProxyType(claims if isinstance(claims, dict) else dict(claims)),
            token=token,
            actor_chain=_actor_chain(claims["act"]) if "act" in claims else (),
            dpop_jkt=_jkt(claims["cnf"]) if "cnf" in claims else None,
        )

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """Refuse to be parsed from a request, so FastAPI fails at start-up.

        A ``Principal`` parameter FastAPI sees itself (``@protected()`` put above the
        route decorator instead of under it) would otherwise become a request body:
        a caller could send the principal of their choice.
        """
        raise TypeError(
            "a Principal comes from the verified token, never from the request: "
            "put @protected() under the route decorator, or use Depends(require(...))"
        )

    @property
    def is_authenticated(self) -> bool:
        """Always true (Starlette ``BaseUser``)."""
        return True

    @property
    def display_name(self) -> str:
        """The subject (Starlette ``BaseUser``)."""
        return self.subject

    @property
    def identity(self) -> str:
        """The subject (Starlette ``BaseUser``)."""
        return self.subject

    @property
    def actor(self) -> str | None:
        """The service calling on the subject's behalf (``act.sub``), or ``None``."""
        return self.actor_chain[0] if self.actor_chain else None

    @property
    def is_delegated(self) -> bool:
        """Whether a service is acting for the subject (a token from token exchange)."""
        return bool(self.actor_chain)

    @property
    def is_client(self) -> bool:
        """Whether the token stands for a service client (client_credentials), not a user."""
        return self.session_id is None and self.subject == self.client_id

    def has_role(self, role: str) -> bool:
        """Whether the token carries ``role``."""
        return role in self.roles

    def has_roles(self, *roles: str) -> bool:
        """Whether the token carries every one of ``roles``."""
        return self.roles.issuperset(roles)

    def has_any_role(self, *roles: str) -> bool:
        """Whether the token carries at least one of ``roles``."""
        return not self.roles.isdisjoint(roles)

    @property
    def acr(self) -> str | None:
        """``acr``: how strongly the user signed in (``pwd``, ``mfa``); ``None`` if unsaid."""
        value = self.claims.get("acr")
        return value if isinstance(value, str) else None

    @property
    def amr(self) -> tuple[str, ...]:
        """``amr``: the methods the user signed in with (RFC 8176), if the token says."""
        value = self.claims.get("amr")
        if not isinstance(value, list | tuple):
            return ()
        return tuple(v for v in value if isinstance(v, str))

    @property
    def auth_time(self) -> float | None:
        """``auth_time``: when the user last signed in, if the token says."""
        value = self.claims.get("auth_time")
        return float(value) if isinstance(value, int | float) else None

    def has_scope(self, scope: str) -> bool:
        """Whether the token grants ``scope``."""
        return scope in self.scopes

    def has_scopes(self, *scopes: str) -> bool:
        """Whether the token grants every one of ``scopes``."""
        return self.scopes.issuperset(scopes)


#: Deeper ``act`` nesting than any real call chain; refused rather than walked.
_MAX_ACTORS = 16


def _actor_chain(act: object) -> tuple[str, ...]:
    """``act.sub``, ``act.act.sub``, …: the current actor first (RFC 8693 §4.1).

    Raises:
        InvalidClaim: ``act`` is not a chain of objects with a string ``sub``.
    """
    chain: list[str] = []
    while act is not None:
        if not isinstance(act, Mapping) or not isinstance(act.get("sub"), str):
            raise InvalidClaim("the 'act' claim must be an object with a string 'sub'")
        if len(chain) == _MAX_ACTORS:
            raise InvalidClaim("the 'act' claim nests too deep")
        chain.append(act["sub"])
        act = act.get("act")
    return tuple(chain)


def _jkt(cnf: object) -> str | None:
    """``cnf.jkt`` (RFC 9449 §6.1).

    Raises:
        InvalidClaim: a ``cnf`` that is not an object, or a ``jkt`` that is not a string.
    """
    if not isinstance(cnf, Mapping):
        raise InvalidClaim("the 'cnf' claim must be an object")
    jkt = cnf.get("jkt")
    if jkt is not None and not isinstance(jkt, str):
        raise InvalidClaim("the 'cnf.jkt' claim must be a string")
    return jkt


Delegation = Literal["allow", "require", "refuse"]


def _names(value: str | Iterable[str] | None) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split())
    return frozenset(value)


class AccessRuleArgs(TypedDict, total=False):
    """The keywords of :meth:`AccessRule.of`, which every framework's ``require`` takes."""

    roles: str | Iterable[str] | None
    scopes: str | Iterable[str] | None
    any_roles: str | Iterable[str] | None
    delegation: Delegation
    actors: str | Iterable[str] | None
    acr: str | Iterable[str] | None
    max_age: int | None


@dataclass(frozen=True, slots=True)
class AccessRule:
    """Roles and scopes an endpoint demands, parsed once where the endpoint is declared."""

    roles: frozenset[str] = frozenset()
    """Every one of these roles."""
    scopes: frozenset[str] = frozenset()
    """Every one of these scopes."""
    any_roles: frozenset[str] = frozenset()
    """At least one of these roles (when not empty)."""
    delegation: Delegation = "allow"
    """Whether a token a service obtained for the user by token exchange is accepted
    (``allow``), needed (``require``) or refused (``refuse``)."""
    actors: frozenset[str] = frozenset()
    """When not empty, a delegated token must come through one of these services."""
    acr: tuple[str, ...] = ()
    """The sign-in reached one of these levels (``acr``, e.g. ``mfa``), when not empty."""
    max_age: int | None = None
    """The sign-in (``auth_time``) is at most this many seconds old."""

    @classmethod
    def of(
        cls,
        *,
        roles: str | Iterable[str] | None = None,
        scopes: str | Iterable[str] | None = None,
        any_roles: str | Iterable[str] | None = None,
        delegation: Delegation = "allow",
        actors: str | Iterable[str] | None = None,
        acr: str | Iterable[str] | None = None,
        max_age: int | None = None,
    ) -> AccessRule:
        """The rule for these names; a string is split on spaces.

        Raises:
            ValueError: ``delegation`` is not one of allow, require, refuse, or
                ``max_age`` is negative.
        """
        if delegation not in ("allow", "require", "refuse"):
            raise ValueError("delegation must be 'allow', 'require' or 'refuse'")
        if max_age is not None and max_age < 0:
            raise ValueError("max_age must be a non-negative number of seconds")
        levels = tuple(dict.fromkeys(acr.split() if isinstance(acr, str) else acr or ()))
        return cls(
            _names(roles),
            _names(scopes),
            _names(any_roles),
            delegation,
            _names(actors),
            levels,
            max_age,
        )

    def __bool__(self) -> bool:
        """Whether the rule demands anything beyond a valid token."""
        return (
            bool(self.roles or self.scopes or self.any_roles or self.actors or self.acr)
            or self.delegation != "allow"
            or self.max_age is not None
        )

    def check(self, principal: Principal, *, now: float | None = None) -> None:
        """Demand the rule of ``principal``.

        Roles and scopes come first: signing in again would not grant them.

        Raises:
            InsufficientScope: a role or scope is missing (RFC 6750 §3.1: 403).
            InsufficientUserAuthentication: the sign-in is too weak or too old
                (RFC 9470: 401 with ``acr_values``/``max_age``).
        """
        if self.delegation != "allow" or self.actors:
            self._check_delegation(principal)
        self._check_grants(principal)
        if self.acr or self.max_age is not None:
            self._check_authentication(principal, time.time() if now is None else now)

    def _check_authentication(self, principal: Principal, now: float) -> None:
        weak = bool(self.acr) and not satisfies(principal.acr, self.acr)
        auth_time = principal.auth_time
        old = self.max_age is not None and (auth_time is None or now - auth_time > self.max_age)
        if not (weak or old):
            return
        message = (
            f"this resource needs a sign-in of level {' or '.join(self.acr)}"
            if weak
            else f"this resource needs a sign-in at most {self.max_age} seconds old"
        )
        raise InsufficientUserAuthentication(message, acr_values=self.acr, max_age=self.max_age)

    def _check_grants(self, principal: Principal) -> None:
        # Subset tests first: a caller who has what it takes costs no new sets.
        roles = principal.roles
        if (
            self.roles <= roles
            and self.scopes <= principal.scopes
            and (not self.any_roles or not roles.isdisjoint(self.any_roles))
        ):
            return
        missing_roles = self.roles - principal.roles
        missing_scopes = self.scopes - principal.scopes
        one_of = self.any_roles
        missing_one_of = bool(one_of) and principal.roles.isdisjoint(one_of)
        if not (missing_roles or missing_scopes or missing_one_of):
            return
        parts = []
        if missing_roles:
            parts.append("role " + " ".join(sorted(missing_roles)))
        if missing_one_of:
            parts.append("one of the roles " + " ".join(sorted(one_of)))
        if missing_scopes:
            parts.append("scope " + " ".join(sorted(missing_scopes)))
        raise InsufficientScope(
            "the token lacks the required " + " and ".join(parts),
            missing_roles=missing_roles | (one_of if missing_one_of else frozenset()),
            missing_scopes=missing_scopes,
            required_scopes=self.scopes if missing_scopes else (),
        )

    def _check_delegation(self, principal: Principal) -> None:
        actor = principal.actor
        if actor is not None and self.delegation == "refuse":
            raise InsufficientScope("this endpoint does not accept a token acting for a user")
        if actor is None and self.delegation == "require":
            raise InsufficientScope(
                "this endpoint needs a token a service obtained for the user (token exchange)"
            )
        if actor is not None and self.actors and actor not in self.actors:
            raise InsufficientScope(f"the service {actor!r} may not act for users here")


def check_access(principal: Principal, **rule: Unpack[AccessRuleArgs]) -> None:
    """Demand every role of ``roles``, every scope of ``scopes``, and one of ``any_roles``;
    of a token a service obtained for the user, what ``delegation`` and ``actors`` say;
    and a sign-in of one of the ``acr`` levels, at most ``max_age`` seconds old.

    A string is split on spaces, so ``scopes="orders:read orders:write"`` works.

    Raises:
        InsufficientScope: a role or scope is missing (RFC 6750 §3.1: 403).
        InsufficientUserAuthentication: the sign-in is too weak or too old (RFC 9470).
    """
    AccessRule.of(**rule).check(principal)
