"""Fuzzing the SDK and the bearer endpoints: nothing but a typed rejection, never a crash.

- hypothesis over the SDK's verifier (random text, mutated real tokens, real
  signatures over arbitrary JSON headers and claims): the only exception is
  :class:`TokenRejected`, and its challenge is a well-formed header.
- mutated tokens over HTTP to the real service and server: 200 or 401, never 500.
- schemathesis over the server's bearer-protected operations with hostile
  ``Authorization`` values (tests/server/test_fuzz.py fuzzes them with valid
  credentials; here every request must stop at authentication): 401, never 500.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from authmesh.errors import AuthmeshError
from authmesh.jose import Key, KeySet, TokenRejected, sign_jwt
from authmesh.service import (
    BearerError,
    Principal,
    ServiceConfig,
    Verifier,
    challenge_for,
    parse_authorization,
)
from authmesh.service._revocations import RevocationState
from support.forge import b64u, sign_raw
from support.security_stack import Stack, assert_invalid_token, start_stack

ISSUER = "https://issuer.example"
KEY = Key.generate("ES256", kid="fuzz-key")
NOW = time.time()
CLAIMS: dict[str, Any] = {
    "iss": ISSUER,
    "sub": "user-1",
    "aud": "orders",
    "exp": int(NOW) + 600,
    "iat": int(NOW),
    "nbf": int(NOW),
    "jti": "jti-1",
    "client_id": "web",
    "scope": "orders:read",
    "roles": ["user"],
    "sid": "sid-1",
}
VALID = sign_jwt(CLAIMS, KEY, typ="at+jwt")
FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _verifier() -> Verifier:
    state = RevocationState()
    state.mark_heard(0)
    config = ServiceConfig(issuer=ISSUER, audience="orders", fail_open=True)
    return Verifier(config, KeySet([KEY.public()]), state, clock=lambda: NOW)


VERIFIER = _verifier()


def _outcome(token: Any) -> str:
    """Verify; the only allowed failure is a TokenRejected with a clean challenge."""
    try:
        principal = VERIFIER.verify(token)
    except TokenRejected as exc:
        challenge = challenge_for(exc, "orders")
        header = challenge.www_authenticate
        assert header.isascii() and header.isprintable(), header
        assert header.startswith('Bearer realm="orders", error="invalid_token"')
        assert json.loads(challenge.body)["error"] == "invalid_token"
        return exc.reason
    assert isinstance(principal, Principal)
    return "accepted"


def test_the_valid_token_is_accepted() -> None:
    assert _outcome(VALID) == "accepted"


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \x00é"


@st.composite
def mutated(draw: st.DrawFn) -> str:
    token = VALID
    for _ in range(draw(st.integers(1, 4))):
        if not token:
            break
        i = draw(st.integers(0, len(token) - 1))
        op = draw(st.sampled_from(["replace", "delete", "insert", "duplicate", "truncate"]))
        if op == "replace":
            token = token[:i] + draw(st.sampled_from(ALPHABET)) + token[i + 1 :]
        elif op == "delete":
            token = token[:i] + token[i + draw(st.integers(1, 20)) :]
        elif op == "insert":
            token = token[:i] + draw(st.text(ALPHABET, min_size=1, max_size=8)) + token[i:]
        elif op == "duplicate":
            parts = token.split(".")
            token = token + "." + parts[draw(st.integers(0, len(parts) - 1))]
        else:
            token = token[:i]
    return token


@FUZZ
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_random_text_is_a_typed_rejection(token: str) -> None:
    assert _outcome(token) != "accepted"


@FUZZ
@given(mutated())
def test_mutated_tokens_are_typed_rejections(token: str) -> None:
    outcome = _outcome(token)
    assert outcome != "accepted" or token == VALID


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
CLAIM_NAMES = st.sampled_from([*CLAIMS, "auth_time", "preferred_username", "cnf", "act"])
HEADER_NAMES = st.sampled_from(["alg", "kid", "typ", "crit", "cty", "b64", "x5t", "zip", "enc"])


@FUZZ
@given(st.dictionaries(CLAIM_NAMES | st.text(max_size=8), JSON, max_size=5))
def test_signed_claims_of_any_shape_never_crash(changes: dict[str, Any]) -> None:
    """The issuer's real signature over odd claims: the claim rules, not a crash, decide."""
    token = sign_jwt({**CLAIMS, **changes}, KEY, typ="at+jwt")
    _outcome(token)


@FUZZ
@given(st.dictionaries(HEADER_NAMES | st.text(max_size=8), JSON, max_size=4))
def test_signed_headers_of_any_shape_never_crash(changes: dict[str, Any]) -> None:
    header = {"alg": "ES256", "kid": "fuzz-key", "typ": "at+jwt", **changes}
    _outcome(sign_raw(json.dumps(header), CLAIMS, KEY))


@FUZZ
@given(st.text(max_size=200), st.text(max_size=200))
def test_non_object_segments_are_typed_rejections(header: str, payload: str) -> None:
    _outcome(f"{b64u(header)}.{b64u(payload)}.{b64u(b'x' * 64)}")


@FUZZ
@given(st.lists(st.text(max_size=60), max_size=3))
def test_authorization_headers_parse_or_raise_bearer_error(values: list[str]) -> None:
    try:
        token = parse_authorization(values)
    except BearerError as exc:
        assert isinstance(exc, AuthmeshError)
        header = challenge_for(exc, "orders").www_authenticate
        assert header.isascii() and header.isprintable()
        return
    assert token is None or (token and " " not in token)


# --- over HTTP ------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_stack(tmp_path_factory.mktemp("fuzz")) as stack:
        yield stack


def test_mutated_real_tokens_over_http(stack: Stack) -> None:
    """A real token, mutated: the service and the server answer 200 or 401, never 500."""
    api, service = stack.api, stack.service
    user, password = api.new_user()
    real = api.login(user, password)["access_token"]
    seen: dict[int, int] = {}

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        token = real
        for _ in range(data.draw(st.integers(1, 3))):
            i = data.draw(st.integers(0, len(token) - 1))
            token = token[:i] + data.draw(st.sampled_from(ALPHABET[:66])) + token[i + 1 :]
        for response in (service.me(token), api.userinfo(token)):
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            if response.status_code != 200:
                assert_invalid_token(response)

    run()
    assert set(seen) <= {200, 401}, seen
    assert seen.get(401, 0) > 0


HOSTILE = [
    "Bearer",
    "Bearer ",
    "Bearer a.b.c",
    "Bearer " + "A" * 9000,
    "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.",
    "Basic YWRtaW46YWRtaW4tcGFzc3dvcmQtMQ==",
]


def _hostile_run(
    stack: Stack, operation: schemathesis.APIOperation, statuses: dict[int, int]
) -> None:
    @settings(
        max_examples=len(HOSTILE),
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), auth=st.sampled_from(HOSTILE))
    def run(case: schemathesis.Case, auth: str) -> None:
        headers = {**(case.headers or {}), "Authorization": auth}
        response = case.call(base_url=stack.api.url, headers=headers, timeout=15)
        case.validate_response(response, checks=[not_a_server_error])
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        # 401; or a request refused before routing (a NUL in the URL is a 400, a path
        # that no longer matches the operation a 404). Never a success, never a 403.
        assert response.status_code in (400, 401, 404), (
            operation.label,
            auth[:20],
            response.status_code,
            response.text[:200],
        )
        if response.status_code == 401:
            challenge = response.headers["www-authenticate"]
            if isinstance(challenge, list):  # schemathesis keeps every value of a header
                (challenge,) = challenge
            assert challenge.startswith("Bearer ")

    run()


def test_schemathesis_bearer_operations_stop_at_authentication(stack: Stack) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.api.url}/openapi.json", timeout=10)
    tested: list[str] = []
    statuses: dict[int, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith(("/admin", "/account", "/userinfo")):
            continue
        tested.append(operation.label)
        _hostile_run(stack, operation, statuses)
    assert "GET /admin/audit" in tested and "POST /account/password" in tested
    assert statuses.get(401, 0) > 0.8 * sum(statuses.values()), statuses
    assert len(tested) >= 15, tested
