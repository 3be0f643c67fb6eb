"""RFC 6750: reading the Authorization header and answering failures."""

from __future__ import annotations

import json

import pytest

from authmesh.jose.errors import TokenExpired, TokenRejected, TokenRevoked, VerifierUnavailable
from authmesh.service.bearer import challenge_for, parse_authorization, quote_param
from authmesh.service.errors import InsufficientScope, InvalidRequest, MissingToken
from support.challenges import parse_challenge


@pytest.mark.parametrize(
    ("values", "token"),
    [
        ([], None),
        (["Bearer abc.def.ghi"], "abc.def.ghi"),
        (["bearer  tok"], "tok"),
        (["BEARER tok "], "tok"),
    ],
    ids=["absent", "bearer", "lowercase-two-spaces", "uppercase-trailing-space"],
)
def test_parse_authorization(values: list[str], token: str | None) -> None:
    assert parse_authorization(values) == token


@pytest.mark.parametrize(
    "values",
    [
        ["Bearer"],
        ["Bearer "],
        ["Bearer a b"],
        ["Basic dXNlcjpwYXNz"],
        [""],
        ["Bearer a", "Bearer b"],
        ["Token abc"],
    ],
    ids=["no-token", "no-token-space", "two-tokens", "basic", "empty", "two-headers", "other"],
)
def test_malformed_authorization(values: list[str]) -> None:
    with pytest.raises(InvalidRequest):
        parse_authorization(values)


def test_missing_token_challenge_has_no_error_code() -> None:
    challenge = challenge_for(MissingToken(), "orders")
    assert challenge.status == 401
    assert challenge.www_authenticate == 'Bearer realm="orders"'
    assert json.loads(challenge.body)["error"] == "unauthorized"


@pytest.mark.parametrize(
    "error",
    [TokenExpired(), TokenRevoked(), TokenRejected("nope")],
    ids=lambda e: e.reason,
)
def test_invalid_token_challenge(error: TokenRejected) -> None:
    challenge = challenge_for(error, "orders")
    assert challenge.status == 401
    params = parse_challenge(challenge.www_authenticate)
    assert params == {
        "realm": "orders",
        "error": "invalid_token",
        "error_description": error.message,
    }
    assert json.loads(challenge.body) == {
        "error": "invalid_token",
        "error_description": error.message,
    }
    assert ("Cache-Control", "no-store") in challenge.headers


def test_a_token_that_cannot_be_checked_now_is_503_with_retry_after() -> None:
    # A stale revocation feed: the token may be fine, so no invalid_token and no challenge.
    error = VerifierUnavailable("the service cannot check revocations right now")
    challenge = challenge_for(error, "orders")
    assert challenge.status == 503
    assert challenge.www_authenticate is None and challenge.retry_after == 2
    headers = dict(challenge.headers)
    assert headers["Retry-After"] == "2" and "WWW-Authenticate" not in headers
    assert headers["Cache-Control"] == "no-store"
    assert json.loads(challenge.body) == {
        "error": "temporarily_unavailable",
        "error_description": error.message,
    }


def test_invalid_request_is_401() -> None:
    challenge = challenge_for(InvalidRequest(), "orders")
    assert challenge.status == 401
    assert parse_challenge(challenge.www_authenticate)["error"] == "invalid_request"


def test_insufficient_scope_names_the_scopes() -> None:
    error = InsufficientScope(
        missing_scopes={"orders:write"}, required_scopes={"orders:read", "orders:write"}
    )
    challenge = challenge_for(error, "orders")
    assert challenge.status == 403
    params = parse_challenge(challenge.www_authenticate)
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "orders:read orders:write"
    assert "orders:write" in params["error_description"]


def test_insufficient_role_has_no_scope_attribute() -> None:
    challenge = challenge_for(InsufficientScope(missing_roles={"admin"}), "orders")
    params = parse_challenge(challenge.www_authenticate)
    assert "scope" not in params
    assert params["error_description"] == "the token lacks the required role admin"


@pytest.mark.parametrize(
    "message",
    [
        'a "quoted" word',
        "back\\slash",
        "new\nline\r\x00\x1b[31m",
        "ünïcödé ✓",
        'x", error="ok',
        "é" * 500,
    ],
    ids=["quotes", "backslash", "controls", "unicode", "injection", "long"],
)
def test_description_is_quoted_safely(message: str) -> None:
    challenge = challenge_for(TokenRejected(message), 'realm "x"')
    params = parse_challenge(challenge.www_authenticate)
    assert set(params) == {"realm", "error", "error_description"}
    assert params["error"] == "invalid_token"
    assert len(params["error_description"]) <= 200
    assert json.loads(challenge.body)["error_description"] == message


def test_quote_param() -> None:
    assert quote_param('say "hi"\\') == "\"say 'hi'/\""
    assert quote_param("tab\there") == '"tab here"'


def test_not_an_auth_failure() -> None:
    with pytest.raises(TypeError):
        challenge_for(ValueError("x"), "r")  # type: ignore[arg-type]
