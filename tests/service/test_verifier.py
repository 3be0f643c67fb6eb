"""Verifier: the token core's rules, the cache of verified tokens, revocation and staleness."""

from __future__ import annotations

import asyncio
import time
import timeit
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from authmesh.jose import Key, KeySet, sign_jwt
from authmesh.jose.errors import (
    InvalidClaim,
    MalformedToken,
    TokenExpired,
    TokenRejected,
    TokenRevoked,
    UnknownKid,
    VerifierUnavailable,
)
from authmesh.revocation import RevocationEvent
from authmesh.service import ServiceAuth, Verifier
from authmesh.service._starlette_bearer import cached_principal
from authmesh.testing import FakeClock
from support.sdk import MOCK_ISSUER, MockIssuer, mock_config

START = 1_800_000_000.0


class Env:
    """A ServiceAuth over the in-memory issuer with hand-moved clocks."""

    def __init__(self, issuer: MockIssuer, *, heard: bool = True, **overrides: Any) -> None:
        self.issuer = issuer
        self.clock = FakeClock(START)
        self.mono = FakeClock(1000.0)
        self.auth = ServiceAuth(
            mock_config(**overrides),
            transport=issuer.transport,
            async_transport=issuer.transport,
            clock=self.clock,
            monotonic=self.mono,
        )
        self.auth.keys.refresh(force=True)
        if self.state is not None and heard:
            self.state.mark_heard()
        self.verifier = self.auth.verifier

    @property
    def state(self) -> Any:
        return self.auth.revocations

    def mint(self, **kwargs: Any) -> str:
        kwargs.setdefault("iat", self.clock())
        return self.issuer.state.mint(**kwargs)

    def revoke(self, kind: str, value: str, *, nb: float | None = None, cursor: int = 1) -> None:
        self.state.apply(
            RevocationEvent(
                kind=kind,  # type: ignore[arg-type]
                value=value,
                not_before=self.clock() if nb is None else nb,
                expires_at=self.clock() + 600,
                cursor=cursor,
            )
        )


@pytest.fixture
def env(mock_issuer: MockIssuer) -> Iterator[Env]:
    e = Env(mock_issuer)
    yield e
    e.auth.stop()


def test_valid_token_and_cache_hit(env: Env) -> None:
    token = env.mint(sub="alice", roles=["clerk"], scope="orders:read", sid="s1")
    p = env.verifier.verify(token)
    assert (p.subject, p.roles, p.scopes, p.session_id) == (
        "alice",
        {"clerk"},
        {"orders:read"},
        "s1",
    )
    assert env.verifier.stats.verified == 1
    assert env.verifier.verify(token) is p
    assert env.verifier.stats.cache_hits == 1


def _forge(env: Env, **claims: Any) -> str:
    key = env.issuer.state.signing_key()
    base = {
        "iss": MOCK_ISSUER,
        "sub": "u",
        "aud": "orders",
        "iat": int(START),
        "exp": int(START) + 300,
        "jti": "j",
        "client_id": "web",
    }
    base.update(claims)
    return sign_jwt({k: v for k, v in base.items() if v is not None}, key, typ="at+jwt")


REJECTIONS = {
    "wrong_audience": lambda env: env.mint(audience="billing"),
    "wrong_issuer": lambda env: _forge(env, iss="https://evil.test"),
    "expired": lambda env: env.mint(iat=START - 1000, lifetime=300),
    "not_yet_valid": lambda env: _forge(env, nbf=START + 3600),
    "issued_in_future": lambda env: _forge(env, iat=START + 3600),
    "missing_claim": lambda env: _forge(env, jti=None),
    "wrong_type": lambda env: sign_jwt({"iss": MOCK_ISSUER}, env.issuer.state.signing_key()),
    # The signature of another token by the same key.
    "bad_signature": lambda env: (
        env.mint().rsplit(".", 1)[0] + "." + env.mint(sid="x").rsplit(".", 1)[1]
    ),
    "malformed": lambda env: "not-a-jwt",
    "alg_not_allowed": lambda env: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    "unknown_kid": lambda env: env.mint(key=Key.generate("EdDSA")),
    "invalid_claim": lambda env: _forge(env, roles="admin"),
}


@pytest.mark.parametrize("reason", sorted(REJECTIONS), ids=str)
def test_the_token_core_rules_apply(env: Env, reason: str) -> None:
    token = REJECTIONS[reason](env)
    with pytest.raises(TokenRejected) as info:
        env.verifier.verify(token)
    assert info.value.reason == reason
    assert env.verifier.stats.rejected[reason] == 1
    assert len(env.verifier.cache) == 0


def test_cached_entry_expires_exactly_when_the_core_would_reject(env: Env) -> None:
    token = env.mint(lifetime=300)
    env.verifier.verify(token)
    leeway = env.verifier.policy.leeway
    env.clock.now = START + 300 + leeway - 0.001
    env.state.mark_heard()
    env.verifier.verify(token)
    assert env.verifier.stats.cache_hits == 1
    env.clock.now = START + 300 + leeway
    with pytest.raises(TokenExpired):
        env.verifier.verify(token)
    assert len(env.verifier.cache) == 0


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("sid", "s1", "session"),
        ("sub", "alice", "sign in again"),
        ("jti", None, "revoked"),
    ],
    ids=["session", "subject", "token"],
)
def test_revocation_is_checked_on_the_cached_path(
    env: Env, kind: str, value: str | None, message: str
) -> None:
    token = env.mint(sub="alice", sid="s1")
    principal = env.verifier.verify(token)
    env.verifier.verify(token)
    env.clock.advance(1)
    env.revoke(kind, value or principal.token_id)
    with pytest.raises(TokenRevoked, match=message):
        env.verifier.verify(token)
    assert env.verifier.stats.cache_hits == 2  # the revoked request was a cache hit too


def test_cached_answers_known_tokens_only_and_still_checks_revocation(env: Env) -> None:
    token = env.mint(sub="alice", sid="s1")
    assert env.verifier.cached(token) is None  # never verified: verify() or averify()
    principal = env.verifier.verify(token)
    assert env.verifier.cached(token) is principal
    assert env.auth.cached(token) is principal
    env.clock.advance(1)
    env.revoke("sid", "s1")
    with pytest.raises(TokenRevoked, match="session"):
        env.verifier.cached(token)
    assert env.verifier.stats.cache_hits == 3
    assert env.verifier.stats.rejected["revoked"] == 1


def _http_scope(*authorization: str) -> dict[str, Any]:
    return {"type": "http", "headers": [(b"authorization", v.encode()) for v in authorization]}


def test_cached_principal_takes_one_exact_header_of_a_held_token_only(env: Env) -> None:
    token = env.mint(sub="alice", sid="s1")
    assert cached_principal(_http_scope(f"Bearer {token}"), env.auth) is None  # not verified yet
    principal = env.verifier.verify(token)
    assert cached_principal(_http_scope(f"Bearer {token}"), env.auth) is principal
    assert cached_principal(_http_scope(f"bEaReR {token}"), env.verifier) is principal
    # Anything else is left to the full parse, which accepts or refuses it.
    for other in (f"Bearer  {token}", f"Bearer {token} ", f"Basic {token}", token, ""):
        assert cached_principal(_http_scope(other), env.auth) is None
    assert cached_principal(_http_scope(f"Bearer {token}", f"Bearer {token}"), env.auth) is None
    assert cached_principal(_http_scope(), env.auth) is None
    env.clock.advance(1)
    env.revoke("sid", "s1")
    with pytest.raises(TokenRevoked):
        cached_principal(_http_scope(f"Bearer {token}"), env.auth)


def test_a_subject_event_spares_tokens_issued_after_it(env: Env) -> None:
    old = env.mint(sub="alice")
    env.clock.advance(5)
    env.revoke("sub", "alice")
    new = env.mint(sub="alice")
    with pytest.raises(TokenRevoked):
        env.verifier.verify(old)
    assert env.verifier.verify(new).subject == "alice"


def test_fails_closed_when_the_feed_is_stale(env: Env) -> None:
    token = env.mint()
    env.verifier.verify(token)
    env.mono.advance(10)  # exactly the bound: still fresh
    env.verifier.verify(token)
    env.mono.advance(0.01)
    assert env.verifier.is_stale()
    with pytest.raises(VerifierUnavailable, match="revocation"):
        env.verifier.verify(token)
    with pytest.raises(VerifierUnavailable):
        env.verifier.verify(env.mint(sid="other"))
    env.state.mark_heard()
    assert env.verifier.verify(token).subject == "user-1"


def test_before_the_first_connection_stale_only_after_the_bound_from_start(
    mock_issuer: MockIssuer,
) -> None:
    e = Env(mock_issuer, heard=False)
    e.state.mark_started()
    token = e.mint()
    e.mono.advance(9)
    assert not e.state.connected_once
    e.verifier.verify(token)
    e.mono.advance(2)
    with pytest.raises(VerifierUnavailable):
        e.verifier.verify(token)


def test_fail_open_accepts_and_counts(mock_issuer: MockIssuer) -> None:
    e = Env(mock_issuer, fail_open=True)
    token = e.mint()
    e.mono.advance(60)
    assert e.verifier.verify(token).subject == "user-1"
    assert e.verifier.stats.fail_open_accepts == 1
    e.revoke("sid", "session-1")
    with pytest.raises(TokenRevoked):  # known revocations still apply
        e.verifier.verify(token)
    assert e.auth.health()["status"] == "degraded"


def test_key_rotation_is_picked_up(env: Env) -> None:
    old_token = env.mint()
    env.verifier.verify(old_token)
    env.issuer.state.add_key()
    env.mono.advance(10)
    env.state.mark_heard()
    new_token = env.mint(sid="s2")
    assert env.verifier.verify(new_token).session_id == "s2"
    assert env.verifier.verify(env.mint(sid="s3")).session_id == "s3"
    assert env.issuer.jwks_fetches == 2
    assert env.verifier.verify(old_token)


def test_a_flood_of_forged_kids_fetches_at_most_once_per_interval(env: Env) -> None:
    env.mono.advance(10)
    env.state.mark_heard()
    stranger = Key.generate("EdDSA")
    for _ in range(200):
        # A new random kid per token, as a forger would send.
        token = _with_kid(stranger, uuid.uuid4().hex)
        with pytest.raises(UnknownKid):
            env.verifier.verify(token)
    assert env.issuer.jwks_fetches == 2  # the start-up fetch and one refetch
    assert env.verifier.stats.jwks_refetches_refused == 199


def _with_kid(key: Key, kid: str) -> str:
    forged = Key.from_jwk({**key.to_jwk(private=True), "kid": kid})
    return sign_jwt({"iss": MOCK_ISSUER}, forged, typ="at+jwt")


def test_withdrawn_key_clears_the_cache(env: Env) -> None:
    old = env.issuer.state.signing_key()
    token = env.mint()
    env.verifier.verify(token)
    env.issuer.state.add_key()
    env.issuer.state.remove_key(old.kid)
    env.auth.keys.refresh(force=True)
    assert len(env.verifier.cache) == 0
    with pytest.raises(UnknownKid):
        env.verifier.verify(token)


def test_no_keys_and_issuer_down_is_unavailable(mock_issuer: MockIssuer) -> None:
    mock_issuer.down = True
    e = Env(mock_issuer)
    mock_issuer.down = False
    with pytest.raises(VerifierUnavailable, match="keys"):
        e.verifier.verify(e.mint())
    e.mono.advance(10)
    e.state.mark_heard()
    assert e.verifier.verify(e.mint()).subject == "user-1"  # rate limit passed: fetched


def test_lru_is_bounded(mock_issuer: MockIssuer) -> None:
    e = Env(mock_issuer, verified_cache_size=2)
    tokens = [e.mint(sid=f"s{i}") for i in range(3)]
    for token in tokens:
        e.verifier.verify(token)
    assert len(e.verifier.cache) == 2
    e.verifier.verify(tokens[1])  # still cached: most recent
    e.verifier.verify(tokens[0])  # evicted: verified again
    assert e.verifier.stats.verified == 4
    assert e.verifier.stats.cache_hits == 1


def test_cache_can_be_disabled(mock_issuer: MockIssuer) -> None:
    e = Env(mock_issuer, verified_cache_size=0)
    token = e.mint()
    e.verifier.verify(token)
    e.verifier.verify(token)
    assert e.verifier.stats.verified == 2 and len(e.verifier.cache) == 0


def test_not_a_string(env: Env) -> None:
    with pytest.raises(MalformedToken):
        env.verifier.verify(b"abc")  # type: ignore[arg-type]


def test_static_keyset_without_revocation(mock_issuer: MockIssuer) -> None:
    key = mock_issuer.state.signing_key()
    verifier = Verifier(mock_config(), KeySet([key.public()]), None)
    token = mock_issuer.state.mint()
    assert verifier.verify(token).subject == "user-1"
    assert not verifier.is_stale()


async def test_averify(env: Env) -> None:
    token = env.mint()
    p = await env.verifier.averify(token)
    assert await env.verifier.averify(token) is p
    env.issuer.state.add_key()
    env.mono.advance(10)
    env.state.mark_heard()
    rotated = env.mint(sid="s9")
    results = await asyncio.gather(*(env.verifier.averify(rotated) for _ in range(20)))
    assert {r.session_id for r in results} == {"s9"}
    assert env.issuer.jwks_fetches == 2
    with pytest.raises(InvalidClaim):
        await env.verifier.averify(env.mint(roles=[1]))
    env.revoke("sid", "s9")
    with pytest.raises(TokenRevoked):
        await env.verifier.averify(rotated)
    await env.auth.http.aclose()


def test_cost_cold_and_warm(mock_issuer: MockIssuer) -> None:
    """Measure (and print) the per-request cost; only a very generous bound is asserted."""
    e = Env(mock_issuer, verified_cache_size=0)
    e.clock = FakeClock(time.time())  # real tokens from now on
    token = e.issuer.state.mint()
    e.verifier._clock = time.time
    n = 300
    cold = timeit.timeit(lambda: e.verifier.verify(token), number=n) / n * 1e6
    cached = Env(mock_issuer)
    cached.verifier._clock = time.time
    cached.verifier.verify(token)
    m = 20_000
    warm = timeit.timeit(lambda: cached.verifier.verify(token), number=m) / m * 1e6
    print(f"\nverify EdDSA: cold {cold:.1f} µs, warm (cached) {warm:.2f} µs")
    assert warm < cold
    assert warm < 100
