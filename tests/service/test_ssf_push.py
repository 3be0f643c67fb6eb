"""The SDK's Shared Signals push endpoint (RFC 8935): what it accepts, how it refuses.

SETs are signed (or forged) against the in-memory issuer's JWKS and handed to
the endpoint's core, then through each framework adapter, as the auth server
would POST them. The real server pushing to running services is in
tests/acceptance/test_ssf_push_revocation.py.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from flask import Flask
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from werkzeug.test import Client

from authmesh.errors import ConfigError
from authmesh.jose import Key, sign_jwt
from authmesh.service import ServiceAuth
from authmesh.service import flask as flask_adapter
from authmesh.service import starlette as starlette_adapter
from authmesh.service import wsgi as wsgi_adapter
from authmesh.service._ssf_push import PushAnswer, SsfPushEndpoint
from authmesh.testing import FakeClock
from support.sdk import MOCK_ISSUER, MockIssuer, mock_config

from .test_ssf_receiver import FORGED_ERRORS, forged

ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
NOW = 1_764_400_000.0
USER = {"format": "iss_sub", "iss": MOCK_ISSUER, "sub": "alice"}
PUSH_URL = "https://orders.test/ssf/events"
SET_TYPE = "application/secevent+jwt"


@pytest.fixture
def issuer() -> MockIssuer:
    return MockIssuer()


@pytest.fixture
def monotonic() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def auth(issuer: MockIssuer, monotonic: FakeClock) -> ServiceAuth:
    auth = ServiceAuth(
        mock_config(revocation_transport="ssf-push", ssf_push_url=PUSH_URL),
        transport=issuer.transport,
        async_transport=issuer.transport,
        clock=lambda: NOW + 5.0,
        monotonic=monotonic,
    )
    assert auth.keys.refresh(force=True)
    return auth


@pytest.fixture
def endpoint(auth: ServiceAuth) -> SsfPushEndpoint:
    assert auth.ssf_push is not None
    return auth.ssf_push


def make_set(key: Key, *, typ: str = "secevent+jwt", **overrides: Any) -> str:
    claims = {
        "iss": MOCK_ISSUER,
        "aud": "orders",
        "jti": uuid.uuid4().hex,
        "iat": int(NOW),
        "sub_id": USER,
        "events": {ACCOUNT_DISABLED: {"event_timestamp": NOW}},
        **overrides,
    }
    return sign_jwt(claims, key, typ=typ)


def alice(**values: Any) -> dict[str, Any]:
    return {"sub": "alice", "sid": "s-1", "jti": "j-1", "iat": NOW - 1, **values}


def receive(endpoint: SsfPushEndpoint, token: str | bytes, **kwargs: Any) -> PushAnswer:
    body = token.encode() if isinstance(token, str) else token
    return endpoint.receive(
        kwargs.get("authorization", [endpoint.authorization]),
        kwargs.get("content_type", SET_TYPE),
        body,
    )


def error_of(answer: PushAnswer) -> str:
    assert answer.status in (400, 401), answer
    assert ("Content-Type", "application/json") in answer.headers
    body = json.loads(answer.body)
    assert set(body) == {"err", "description"}
    return str(body["err"])


def test_an_authorized_set_is_applied_and_accepted(
    issuer: MockIssuer, auth: ServiceAuth, endpoint: SsfPushEndpoint, monotonic: FakeClock
) -> None:
    assert auth.revocations is not None and auth.feed is not None
    monotonic.advance(5)
    answer = receive(endpoint, make_set(issuer.state.signing_key()))

    assert answer.status == 202 and answer.body == b""
    assert auth.is_revoked(alice())
    assert not auth.is_revoked(alice(iat=NOW + 1))  # issued after the event
    assert auth.revocations.seconds_since_heard() == 0  # a push proves liveness
    assert auth.feed.connected


def bad_sets(issuer: MockIssuer) -> dict[str, tuple[str | bytes, dict[str, Any]]]:
    real = issuer.state.signing_key()
    # The poll receiver's table (forged, unsigned, other audience or issuer, not a SET) ...
    cases: dict[str, tuple[str | bytes, dict[str, Any]]] = {
        case: (token, {}) for case, (_, token) in forged(issuer).items()
    }
    # ... and what only a push can bring.
    return cases | {
        "no events": (make_set(real, events=None), {}),
        "from the future": (make_set(real, iat=int(NOW) + 3600), {}),
        "too old": (make_set(real, iat=int(NOW) - 2 * 3600), {}),
        "not a JWS": (b"hello", {}),
        "not ASCII": ("caf\u00e9".encode(), {}),
        "empty": (b"", {}),
        "too large": (b"a" * 20_000, {}),
        "wrong content type": (make_set(real), {"content_type": "application/json"}),
        "no content type": (make_set(real), {"content_type": None}),
    }


@pytest.mark.parametrize(
    ("case", "err"),
    [
        *FORGED_ERRORS,
        ("no events", "invalid_request"),
        ("from the future", "invalid_request"),
        ("too old", "invalid_request"),
        ("not a JWS", "invalid_request"),
        ("not ASCII", "invalid_request"),
        ("empty", "invalid_request"),
        ("too large", "invalid_request"),
        ("wrong content type", "invalid_request"),
        ("no content type", "invalid_request"),
    ],
)
def test_a_bad_set_is_a_400_with_its_rfc_8935_error_and_is_never_applied(
    issuer: MockIssuer, auth: ServiceAuth, endpoint: SsfPushEndpoint, case: str, err: str
) -> None:
    assert auth.revocations is not None
    heard = auth.revocations.last_heard
    token, kwargs = bad_sets(issuer)[case]

    answer = receive(endpoint, token, **kwargs)

    assert answer.status == 400
    assert error_of(answer) == err
    assert not auth.is_revoked(alice())
    assert auth.revocations.last_heard == heard  # a refused SET proves nothing
    assert auth.stats.rejected[f"ssf_set_{err}"] == 1


def test_a_set_received_twice_is_refused_the_second_time(
    issuer: MockIssuer, endpoint: SsfPushEndpoint
) -> None:
    token = make_set(issuer.state.signing_key())
    assert receive(endpoint, token).status == 202
    again = receive(endpoint, token)
    assert again.status == 400 and error_of(again) == "invalid_request"
    assert b"received before" in again.body


@pytest.mark.parametrize(
    "authorization",
    [[], ["Bearer nope"], ["{right}x"], ["{right}", "{right}"], ["Basic b3JkZXJzOnMzY3JldA=="]],
    ids=["missing", "wrong", "longer", "twice", "client-credentials"],
)
def test_a_push_without_the_streams_authorization_is_a_401(
    issuer: MockIssuer, auth: ServiceAuth, endpoint: SsfPushEndpoint, authorization: list[str]
) -> None:
    sent = [a.format(right=endpoint.authorization) for a in authorization]
    answer = receive(endpoint, make_set(issuer.state.signing_key()), authorization=sent)

    # Not a 400: the transmitter must retry (a stale secret), not drop the SET.
    assert answer.status == 401
    assert ("WWW-Authenticate", "Bearer") in answer.headers
    assert error_of(answer) == "authentication_failed"
    assert not auth.is_revoked(alice())


def test_a_set_under_a_new_key_is_applied_once_the_jwks_is_refetched(
    issuer: MockIssuer, auth: ServiceAuth, endpoint: SsfPushEndpoint, monotonic: FakeClock
) -> None:
    rotated = issuer.state.add_key()
    token = make_set(rotated)
    # Just fetched: the rate limit refuses a refetch, so the transmitter is asked to retry.
    busy = receive(endpoint, token)
    assert busy.status == 503 and ("Retry-After", "2") in busy.headers
    assert not auth.is_revoked(alice())

    monotonic.advance(11)
    assert receive(endpoint, token).status == 202
    assert auth.is_revoked(alice())


def test_a_key_the_issuer_does_not_publish_is_invalid_key(
    issuer: MockIssuer, endpoint: SsfPushEndpoint, monotonic: FakeClock
) -> None:
    monotonic.advance(11)
    answer = receive(endpoint, make_set(Key.generate("EdDSA")))
    assert answer.status == 400 and error_of(answer) == "invalid_key"


def test_a_verification_echoing_a_requested_state_answers_the_request(
    issuer: MockIssuer, endpoint: SsfPushEndpoint, monotonic: FakeClock
) -> None:
    key = issuer.state.signing_key()
    assert endpoint.verification_wait() is None
    state = endpoint.new_state()
    monotonic.advance(2)
    assert endpoint.verification_wait() == 2

    stranger = make_set(key, events={VERIFICATION: {"state": "not ours"}})
    assert receive(endpoint, stranger).status == 202
    assert endpoint.verification_wait() == 2  # accepted (it proves liveness), not the answer

    answer = make_set(key, events={VERIFICATION: {"state": state}})
    assert receive(endpoint, answer).status == 202
    assert endpoint.verification_wait() is None


def test_the_async_path_answers_alike(issuer: MockIssuer, endpoint: SsfPushEndpoint) -> None:
    token = make_set(issuer.state.signing_key())

    async def both() -> tuple[PushAnswer, PushAnswer]:
        first = await endpoint.areceive([endpoint.authorization], SET_TYPE, token.encode())
        second = await endpoint.areceive([endpoint.authorization], SET_TYPE, token.encode())
        return first, second

    first, second = asyncio.run(both())
    assert first.status == 202 and second.status == 400


def _starlette_app(auth: ServiceAuth) -> Starlette:
    app = Starlette(routes=[Route("/me", lambda request: PlainTextResponse("me"))])
    starlette_adapter.install(app, auth, required=True, lifespan=False)
    return app


def _flask_app(auth: ServiceAuth) -> Flask:
    app = Flask("orders")
    app.add_url_rule("/me", "me", lambda: "me")
    flask_adapter.install(app, auth, start=False)
    return app


def _wsgi_app(auth: ServiceAuth) -> Any:
    def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"me"]

    return wsgi_adapter.install(hello, auth, required=True, start=False)


@pytest.mark.parametrize("framework", ["starlette", "flask", "wsgi"])
def test_every_adapter_serves_the_endpoint_ahead_of_the_bearer_check(
    issuer: MockIssuer, auth: ServiceAuth, endpoint: SsfPushEndpoint, framework: str
) -> None:
    token = make_set(issuer.state.signing_key())
    right = {"Authorization": endpoint.authorization, "Content-Type": SET_TYPE}
    wrong = {**right, "Authorization": "Bearer nope"}
    if framework == "starlette":
        answers = asyncio.run(_asgi_requests(_starlette_app(auth), token, right, wrong))
    else:
        app = _flask_app(auth) if framework == "flask" else _wsgi_app(auth)
        client = Client(app)
        answers = [
            client.post("/ssf/events", data=token, headers=right),
            client.post("/ssf/events", data=token, headers=right),
            client.post("/ssf/events", data=token, headers=wrong),
            client.get("/ssf/events"),
        ]
        answers = [(a.status_code, a.headers.get("Content-Type"), a.get_data()) for a in answers]
    accepted, replayed, unauthorized, get = answers
    assert accepted[0] == 202 and accepted[2] == b""
    assert replayed[0] == 400 and json.loads(replayed[2])["err"] == "invalid_request"
    assert unauthorized[0] == 401 and json.loads(unauthorized[2])["err"] == "authentication_failed"
    assert get[0] == 405
    assert auth.is_revoked(alice())


async def _asgi_requests(
    app: Starlette, token: str, right: dict[str, str], wrong: dict[str, str]
) -> list[tuple[int, str | None, bytes]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
        answers = [
            await client.post("/ssf/events", content=token, headers=right),
            await client.post("/ssf/events", content=token, headers=right),
            await client.post("/ssf/events", content=token, headers=wrong),
            await client.get("/ssf/events"),
        ]
        # The rest of the app still wants a token.
        assert (await client.get("/me")).status_code == 401
    return [(a.status_code, a.headers.get("content-type"), a.content) for a in answers]


def test_an_app_following_the_native_feed_serves_no_push_endpoint(
    issuer: MockIssuer,
) -> None:
    auth = ServiceAuth(mock_config(), transport=issuer.transport)
    assert auth.ssf_push is None
    client = Client(_flask_app(auth))
    assert (
        client.post("/ssf/events", data="x", headers={"Content-Type": SET_TYPE}).status_code == 404
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"revocation_transport": "ssf-push"}, "needs ssf_push_url"),
        ({"revocation_transport": "ssf-push", "ssf_push_url": "https://o.test"}, "with a path"),
        (
            {"revocation_transport": "ssf-push", "ssf_push_url": "http://orders.example/ssf"},
            "plain http",
        ),
        ({"ssf_push_url": PUSH_URL}, "need revocation_transport='ssf-push'"),
        (
            {"revocation_transport": "ssf-push", "ssf_push_url": PUSH_URL, "ssf_push_path": "x"},
            "ssf_push_path",
        ),
    ],
    ids=["no-url", "no-path", "plain-http", "push-url-without-push", "relative-path"],
)
def test_push_settings_are_checked(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        mock_config(**overrides)


def test_the_push_path_defaults_to_the_urls_and_may_differ_behind_a_proxy() -> None:
    config = mock_config(revocation_transport="ssf-push", ssf_push_url=PUSH_URL)
    assert config.ssf_push_path == "/ssf/events"
    proxied = mock_config(
        revocation_transport="ssf-push",
        ssf_push_url="https://gateway.test/orders/ssf/events",
        ssf_push_path="/ssf/events",
    )
    assert proxied.ssf_push_path == "/ssf/events"
    local = mock_config(revocation_transport="ssf-push", ssf_push_url="http://127.0.0.1:9/e")
    assert local.ssf_push_url == "http://127.0.0.1:9/e"
