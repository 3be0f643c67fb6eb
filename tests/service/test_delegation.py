"""Delegated tokens (RFC 8693 ``act``): the actor chain on the principal, and endpoints that
require, refuse or restrict delegation, in every adapter's rule."""

from __future__ import annotations

from typing import Any

import pytest

from authmesh.jose.errors import InvalidClaim
from authmesh.service import InsufficientScope, Principal, check_access
from authmesh.service.principal import AccessRule


def _principal(**extra: Any) -> Principal:
    claims: dict[str, Any] = {
        "sub": "alice",
        "client_id": "orders-svc",
        "roles": ["user"],
        "scope": "catalog:read",
        "sid": "s1",
        "jti": "j1",
        "iat": 1,
        "exp": 2,
        "aud": "catalog",
        **extra,
    }
    return Principal.from_claims(claims, "token")


def test_a_plain_token_has_no_actor() -> None:
    user = _principal()
    assert user.actor is None
    assert user.actor_chain == ()
    assert not user.is_delegated


def test_the_actor_chain_lists_the_current_actor_first() -> None:
    user = _principal(act={"sub": "pricing-svc", "act": {"sub": "orders-svc"}})
    assert user.actor == "pricing-svc"
    assert user.actor_chain == ("pricing-svc", "orders-svc")
    assert user.is_delegated


@pytest.mark.parametrize(
    "act",
    [
        "orders-svc",
        {"client_id": "orders-svc"},
        {"sub": 7},
        {"sub": "a", "act": ["b"]},
    ],
)
def test_a_malformed_act_claim_is_refused(act: object) -> None:
    with pytest.raises(InvalidClaim):
        _principal(act=act)


def test_an_endlessly_nested_act_claim_is_refused() -> None:
    act: dict[str, Any] = {"sub": "s0"}
    for n in range(1, 40):
        act = {"sub": f"s{n}", "act": act}
    with pytest.raises(InvalidClaim, match="too deep"):
        _principal(act=act)


@pytest.mark.parametrize(
    ("rule", "plain_ok", "delegated_ok"),
    [
        (AccessRule.of(), True, True),
        (AccessRule.of(delegation="refuse"), True, False),
        (AccessRule.of(delegation="require"), False, True),
        (AccessRule.of(actors="orders-svc"), True, True),
        (AccessRule.of(actors="billing-svc"), True, False),
        (AccessRule.of(delegation="require", actors=["billing-svc", "orders-svc"]), False, True),
    ],
)
def test_rules_on_delegation(rule: AccessRule, plain_ok: bool, delegated_ok: bool) -> None:
    for principal, ok in (
        (_principal(), plain_ok),
        (_principal(act={"sub": "orders-svc"}), delegated_ok),
    ):
        if ok:
            rule.check(principal)
        else:
            with pytest.raises(InsufficientScope):
                rule.check(principal)


def test_only_the_current_actor_counts() -> None:
    # orders acted first, then pricing: an endpoint for orders does not take pricing's call.
    chained = _principal(act={"sub": "pricing-svc", "act": {"sub": "orders-svc"}})
    with pytest.raises(InsufficientScope, match="pricing-svc"):
        check_access(chained, actors="orders-svc")


def test_an_unknown_delegation_mode_fails_where_the_endpoint_is_declared() -> None:
    with pytest.raises(ValueError, match="delegation"):
        AccessRule.of(delegation="sometimes")  # type: ignore[arg-type]


def test_a_rule_on_delegation_only_is_not_empty() -> None:
    assert AccessRule.of(delegation="refuse")
    assert AccessRule.of(actors="orders-svc")
    assert not AccessRule.of()
