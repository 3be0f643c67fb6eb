"""Principal: what a verified token says about the caller, and the role/scope check."""

from __future__ import annotations

from typing import Any

import pytest

from authmesh.jose.errors import InvalidClaim
from authmesh.service import InsufficientScope, Principal, check_access

CLAIMS: dict[str, Any] = {
    "iss": "https://auth.test",
    "sub": "u1",
    "aud": ["orders", "billing"],
    "exp": 2000,
    "iat": 1000,
    "jti": "j1",
    "client_id": "web",
    "scope": "orders:read  orders:write",
    "roles": ["clerk", "admin"],
    "sid": "s1",
}


def principal(**changes: Any) -> Principal:
    claims = {**CLAIMS, **changes}
    claims = {k: v for k, v in claims.items() if v is not None}
    return Principal.from_claims(claims, "the-raw-token")


def test_from_claims() -> None:
    p = principal()
    assert p.subject == "u1"
    assert p.client_id == "web"
    assert p.roles == {"clerk", "admin"}
    assert p.scopes == {"orders:read", "orders:write"}
    assert p.session_id == "s1"
    assert p.token_id == "j1"
    assert p.audience == ("orders", "billing")
    assert (p.issued_at, p.expires_at) == (1000.0, 2000.0)
    assert p.claims["client_id"] == "web"
    assert p.token == "the-raw-token"
    assert p.is_authenticated and p.display_name == p.identity == "u1"
    assert not p.is_client
    assert "the-raw-token" not in repr(p)


def test_hashable_and_comparable() -> None:
    assert principal() == principal()
    assert len({principal(), principal(), principal(sub="u2")}) == 2


def test_claims_are_read_only() -> None:
    with pytest.raises(TypeError):
        principal().claims["sub"] = "someone else"  # type: ignore[index]


def test_client_credentials_principal() -> None:
    p = principal(sub="svc", client_id="svc", sid=None, roles=None, scope=None, aud="orders")
    assert p.is_client
    assert p.roles == frozenset() and p.scopes == frozenset()
    assert p.session_id is None
    assert p.audience == ("orders",)


@pytest.mark.parametrize("roles", ["admin", [1, 2], {"a": 1}, [None]], ids=str)
def test_roles_must_be_a_list_of_strings(roles: object) -> None:
    with pytest.raises(InvalidClaim, match="roles"):
        principal(roles=roles)


def test_helpers() -> None:
    p = principal()
    assert p.has_role("admin") and not p.has_role("root")
    assert p.has_roles("admin", "clerk") and not p.has_roles("admin", "root")
    assert p.has_any_role("root", "clerk") and not p.has_any_role("root")
    assert p.has_scope("orders:read") and not p.has_scope("orders")
    assert p.has_scopes("orders:read", "orders:write") and not p.has_scopes("x", "orders:read")
    assert p.has_scopes() and p.has_roles()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"roles": "admin"},
        {"roles": ["admin", "clerk"]},
        {"scopes": "orders:read orders:write"},
        {"any_roles": ["root", "clerk"]},
        {"roles": "clerk", "scopes": ["orders:read"]},
    ],
    ids=["nothing", "role", "roles", "scopes-string", "any-role", "both"],
)
def test_check_access_allows(kwargs: dict[str, Any]) -> None:
    check_access(principal(), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "roles", "scopes", "message"),
    [
        ({"roles": "root"}, {"root"}, set(), "the token lacks the required role root"),
        ({"scopes": "orders:read x:y"}, set(), {"x:y"}, "the token lacks the required scope x:y"),
        (
            {"any_roles": "root boss"},
            {"root", "boss"},
            set(),
            "the token lacks the required one of the roles boss root",
        ),
        (
            {"roles": "root", "scopes": "z"},
            {"root"},
            {"z"},
            "the token lacks the required role root and scope z",
        ),
    ],
    ids=["role", "scope", "any-role", "both"],
)
def test_check_access_refuses(
    kwargs: dict[str, Any], roles: set[str], scopes: set[str], message: str
) -> None:
    with pytest.raises(InsufficientScope) as info:
        check_access(principal(), **kwargs)
    assert info.value.missing_roles == roles
    assert info.value.missing_scopes == scopes
    assert info.value.message == message
    assert info.value.status == 403
