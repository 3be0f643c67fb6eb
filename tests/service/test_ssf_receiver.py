"""The SDK's Shared Signals receiver: what it applies, what it refuses, what it acknowledges.

SETs are handed to :class:`SsfStreamClient` as a transmitter's poll answer
would carry them, signed (or forged) against the in-memory issuer's JWKS.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest

from authmesh.errors import ConfigError
from authmesh.jose import Key, sign_jwt
from authmesh.service import ServiceAuth
from authmesh.service._ssf_stream import SsfStreamClient
from support.sdk import MOCK_ISSUER, MockIssuer, mock_config

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
ACCOUNT_ENABLED = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
NOW = 1_764_400_000
USER = {"format": "iss_sub", "iss": MOCK_ISSUER, "sub": "alice"}


@pytest.fixture
def issuer() -> MockIssuer:
    return MockIssuer()


@pytest.fixture
def auth(issuer: MockIssuer) -> ServiceAuth:
    auth = ServiceAuth(
        mock_config(revocation_transport="ssf-poll"),
        transport=issuer.transport,
        clock=lambda: NOW + 5.0,
    )
    assert auth.keys.refresh(force=True)
    return auth


@pytest.fixture
def stream(auth: ServiceAuth) -> SsfStreamClient:
    assert auth.feed is not None
    return SsfStreamClient(auth.feed, auth.keys, clock=lambda: NOW + 5.0)


def make_set(
    key: Key,
    event_type: str,
    subject: dict[str, Any],
    *,
    typ: str = "secevent+jwt",
    **overrides: Any,
) -> tuple[str, str]:
    jti = uuid.uuid4().hex
    claims = {
        "iss": MOCK_ISSUER,
        "aud": "orders",
        "jti": jti,
        "iat": NOW,
        "sub_id": subject,
        "events": {event_type: {"event_timestamp": NOW, "initiating_entity": "admin"}},
        **overrides,
    }
    return jti, sign_jwt(claims, key, typ=typ)


def answer(*sets: tuple[str, str]) -> httpx.Response:
    return httpx.Response(200, json={"sets": dict(sets), "moreAvailable": False})


def claims(**values: Any) -> dict[str, Any]:
    return {"sub": "bob", "sid": "s-other", "jti": "j-other", "iat": NOW - 1, **values}


def test_each_event_revokes_what_it_names(
    issuer: MockIssuer, auth: ServiceAuth, stream: SsfStreamClient
) -> None:
    key = issuer.state.signing_key()
    session = {"format": "complex", "session": {"format": "opaque", "id": "s-1"}, "user": USER}
    token = {"format": "jwt_id", "iss": MOCK_ISSUER, "jti": "j-1"}
    carol = {**USER, "sub": "carol"}
    dave = {**USER, "sub": "dave"}
    sets = [
        make_set(key, SESSION_REVOKED, session),
        make_set(key, SESSION_REVOKED, token),
        make_set(key, ACCOUNT_DISABLED, USER),
        make_set(key, CREDENTIAL_CHANGE, carol),
        make_set(key, ACCOUNT_ENABLED, dave),
    ]
    assert stream.apply_poll(answer(*sets), sent={}) == []

    assert auth.is_revoked(claims(sid="s-1"))
    assert auth.is_revoked(claims(jti="j-1"))
    assert auth.is_revoked(claims(sub="alice"))
    assert not auth.is_revoked(claims(sub="alice", iat=NOW + 1))  # issued after the event
    assert auth.is_revoked(claims(sub="carol"))
    assert not auth.is_revoked(claims(sub="dave"))
    assert not auth.is_revoked(claims())
    assert stream.acks == [jti for jti, _ in sets]
    assert stream.errors == {}
    assert auth.feed is not None and auth.feed.synced.is_set()


def forged(issuer: MockIssuer) -> dict[str, tuple[str, str]]:
    real = issuer.state.signing_key()
    impostor = Key.generate("EdDSA", kid=real.kid)
    unknown = Key.generate("EdDSA")
    jti = uuid.uuid4().hex
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"secevent+jwt"}').rstrip(b"=")
    body = {
        "iss": MOCK_ISSUER,
        "aud": "orders",
        "jti": jti,
        "iat": NOW,
        "sub_id": USER,
        "events": {ACCOUNT_DISABLED: {}},
    }
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=")
    return {
        "forged": make_set(impostor, ACCOUNT_DISABLED, USER),
        "unsigned": (jti, (header + b"." + payload + b".").decode()),
        "other audience": make_set(real, ACCOUNT_DISABLED, USER, aud="catalog"),
        "other issuer": make_set(real, ACCOUNT_DISABLED, USER, iss="https://evil.test"),
        "not a SET": make_set(real, ACCOUNT_DISABLED, USER, typ="at+jwt"),
        "unknown key": make_set(unknown, ACCOUNT_DISABLED, USER),
    }


#: Each SET of :func:`forged` but the unknown key, and the RFC 8935 §2.4 error it gets.
FORGED_ERRORS = [
    ("forged", "authentication_failed"),
    ("unsigned", "invalid_key"),
    ("other audience", "invalid_audience"),
    ("other issuer", "invalid_issuer"),
    ("not a SET", "invalid_request"),
]


@pytest.mark.parametrize(("case", "err"), FORGED_ERRORS)
def test_a_set_that_fails_verification_is_refused_never_applied(
    issuer: MockIssuer, auth: ServiceAuth, stream: SsfStreamClient, case: str, err: str
) -> None:
    jti, token = forged(issuer)[case]
    assert stream.apply_poll(answer((jti, token)), sent={}) == []

    assert not auth.is_revoked(claims(sub="alice"))
    assert stream.acks == []
    assert stream.errors[jti]["err"] == err
    # The next poll reports it (RFC 8936 §2.4) and, once sent, forgets it.
    body = stream.poll_body(immediately=False)
    assert body["setErrs"] == {jti: stream.errors[jti]} and body["ack"] == []
    stream.apply_poll(answer(), sent=body)
    assert stream.errors == {} and "setErrs" not in stream.poll_body(immediately=False)


def test_a_set_under_an_unknown_key_waits_for_a_jwks_refresh(
    issuer: MockIssuer, auth: ServiceAuth, stream: SsfStreamClient
) -> None:
    jti, token = forged(issuer)["unknown key"]
    assert stream.apply_poll(answer((jti, token)), sent={}) == [jti]
    # Neither acknowledged nor refused: the transmitter delivers it again.
    assert stream.acks == [] and stream.errors == {}
    stream.refuse_unknown_kid([jti])
    assert stream.errors[jti]["err"] == "invalid_key"


def test_acks_are_sent_once_and_a_set_delivered_twice_is_harmless(
    issuer: MockIssuer, auth: ServiceAuth, stream: SsfStreamClient
) -> None:
    one = make_set(issuer.state.signing_key(), ACCOUNT_DISABLED, USER)
    stream.apply_poll(answer(one), sent={})
    body = stream.poll_body(immediately=False)
    assert body["ack"] == [one[0]]
    # The same SET again (its ack was lost in a crash): applied again, idempotently.
    stream.apply_poll(answer(one), sent=body)
    assert stream.acks == [one[0]]
    assert auth.is_revoked(claims(sub="alice"))


def test_poll_answers_keep_the_state_fresh(auth: ServiceAuth, stream: SsfStreamClient) -> None:
    assert auth.revocations is not None
    heard = auth.revocations.last_heard
    stream.apply_poll(answer(), sent={})
    assert auth.revocations.last_heard >= heard and auth.revocations.connected_once


def test_bad_poll_answers_raise_and_apply_nothing(stream: SsfStreamClient) -> None:
    from authmesh.service.errors import FeedError

    for bad in (
        httpx.Response(500),
        httpx.Response(200, content=b"not json"),
        httpx.Response(200, json={"sets": []}),
        httpx.Response(404),
    ):
        with pytest.raises(FeedError):
            stream.apply_poll(bad, sent={})
    assert stream.poll_url is None  # a 404 makes it look for its stream again


def test_revocation_transport_is_checked() -> None:
    with pytest.raises(ConfigError, match="revocation_transport"):
        mock_config(revocation_transport="carrier-pigeon")
    assert mock_config().revocation_transport == "feed"
