"""The receiver's side of one Shared Signals stream: its endpoints, token, acks and refusals.

It reads the transmitter metadata, finds or describes this instance's stream,
builds the poll requests (RFC 8936) and applies their answers through
:class:`~authmesh.service._ssf_sets.SetReader`. Both receivers use it: the poll
subscriber (:mod:`._ssf_receiver`) and the push receiver (:mod:`._ssf_push_task`),
which catches up the same way at start, so it manages a stream of either delivery
method.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from authmesh.jose import UnknownKid
from authmesh.jose.policy import Clock
from authmesh.service._feed import FeedProcessor
from authmesh.service._http import basic_authorization
from authmesh.service._jwks import JWKSCache
from authmesh.service._ssf_sets import EVENTS_REQUESTED, SetReader, SetRefused, numeric
from authmesh.service.errors import FeedError, FeedUnauthorized

__all__ = ["POLL", "PUSH", "SsfStreamClient"]

POLL = "urn:ietf:rfc:8936"
PUSH = "urn:ietf:rfc:8935"
_MAX_EVENTS = 1000
_MAX_BODY = 8 * 1024 * 1024


@dataclass
class SsfStreamClient:
    """The receiver's side of one stream: its endpoints, token, acks and refusals."""

    processor: FeedProcessor
    keys: JWKSCache
    clock: Clock = time.time
    stream_id: str | None = None
    #: The poll URL while the stream is delivered by poll.
    poll_url: str | None = None
    configuration_endpoint: str | None = None
    verification_endpoint: str | None = None
    _token: str | None = None
    _token_expires: float = 0.0
    acks: list[str] = field(default_factory=list)
    errors: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        config = self.processor.config
        assert config.client_id is not None and config.client_secret is not None
        self.client_id = config.client_id
        self._basic = basic_authorization(config.client_id, config.client_secret)
        self.sets = SetReader(self.processor, self.keys, clock=self.clock)

    # -- requests ----------------------------------------------------------------------

    def token_request(self) -> dict[str, Any]:
        """The client-credentials request for a token holding ``ssf:stream``."""
        return {
            "data": {"grant_type": "client_credentials", "scope": "ssf:stream"},
            "headers": {"Authorization": self._basic, "Accept": "application/json"},
        }

    def token_due(self) -> bool:
        """Whether a new token is needed."""
        return self._token is None or time.monotonic() >= self._token_expires

    def take_token(self, response: httpx.Response) -> None:
        """Keep the token of a token response (renewed 30 s before it expires)."""
        if response.status_code in (400, 401):
            raise FeedUnauthorized(
                f"ssf: the token endpoint refused this client (HTTP {response.status_code}); "
                "it needs the client_credentials grant and the ssf:stream scope"
            )
        doc = _json(response, "ssf token")
        token = doc.get("access_token")
        if not isinstance(token, str):
            raise FeedError("ssf token: the response has no access_token")
        lifetime = numeric(doc.get("expires_in"), 300.0)
        self._token = token
        self._token_expires = time.monotonic() + max(5.0, lifetime - 30.0)

    def drop_token(self) -> None:
        """Forget a token the transmitter refused: the next request takes a new one."""
        self._token = None

    @property
    def bearer(self) -> dict[str, str]:
        """The stream endpoints' ``Authorization``."""
        return {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}

    def check_metadata(self, response: httpx.Response, methods: tuple[str, ...]) -> None:
        """Read the transmitter metadata: for this issuer, offering the delivery ``methods``."""
        doc: dict[str, Any] = _json(response, "ssf-configuration")
        config = self.processor.config
        if doc.get("issuer") != config.issuer:
            raise FeedError("ssf-configuration: the issuer is not the configured one")
        offered = doc.get("delivery_methods_supported") or []
        for method in methods:
            if method not in offered:
                raise FeedError(f"ssf-configuration: the transmitter does not offer {method}")
        endpoints = {}
        for name in ("configuration_endpoint", "verification_endpoint"):
            endpoint = doc.get(name)
            if isinstance(endpoint, str):
                config.check_url(endpoint, what=f"ssf {name}")
                endpoints[name] = endpoint
        if "configuration_endpoint" not in endpoints:
            raise FeedError("ssf-configuration: no configuration_endpoint")
        self.configuration_endpoint = endpoints["configuration_endpoint"]
        self.verification_endpoint = endpoints.get("verification_endpoint")

    @property
    def description(self) -> str:
        """How this instance's stream is told apart from its replicas' (``ssf_receiver_name``)."""
        config = self.processor.config
        name = config.ssf_receiver_name or ",".join(sorted(config.audiences))
        return f"authmesh receiver {name}"[:500]

    def pick_stream(self, response: httpx.Response) -> Mapping[str, Any] | None:
        """The configuration of this instance's stream (by its description), if it has one."""
        streams = _json(response, "ssf streams", expect=list)
        for stream in streams:
            if isinstance(stream, Mapping) and stream.get("description") == self.description:
                return stream
        return None

    def new_stream_body(self, delivery: Mapping[str, Any]) -> dict[str, Any]:
        """What a new stream asks for."""
        return {
            "delivery": dict(delivery),
            "events_requested": EVENTS_REQUESTED,
            "description": self.description,
        }

    def delivery_update(self, delivery: Mapping[str, Any]) -> dict[str, Any]:
        """The PATCH body giving the stream this ``delivery`` (SSF 1.0 §8.1.1.3)."""
        assert self.stream_id is not None
        return {"stream_id": self.stream_id, "delivery": dict(delivery)}

    def adopt(self, stream: Mapping[str, Any]) -> None:
        """Follow this stream configuration: its id, and its poll URL if it is polled."""
        stream_id = stream.get("stream_id")
        delivery = stream.get("delivery")
        if not isinstance(stream_id, str) or not isinstance(delivery, Mapping):
            raise FeedError("ssf stream: no stream_id or delivery")
        self.stream_id = stream_id
        self.poll_url = None
        if delivery.get("method") == POLL:
            url = delivery.get("endpoint_url")
            if not isinstance(url, str):
                raise FeedError("ssf stream: the poll delivery has no endpoint_url")
            self.processor.config.check_url(url, what="ssf poll endpoint")
            self.poll_url = url

    def stream_answer(self, response: httpx.Response, *, status: int) -> Mapping[str, Any]:
        """The stream configuration a create (201) or update (200) answered."""
        if response.status_code == 401:
            self.drop_token()
        if response.status_code != status:
            raise FeedError(
                f"ssf: configuring the stream failed with HTTP {response.status_code}",
                status=response.status_code,
            )
        doc: Mapping[str, Any] = _json(response, "ssf stream", status=status)
        return doc

    def poll_body(self, *, immediately: bool) -> dict[str, Any]:
        """RFC 8936 §2.1: acknowledge what was applied, refuse what failed, ask for more."""
        body: dict[str, Any] = {
            "ack": list(self.acks),
            "maxEvents": _MAX_EVENTS,
            "returnImmediately": immediately,
        }
        if self.errors:
            body["setErrs"] = dict(self.errors)
        return body

    # -- answers -----------------------------------------------------------------------

    def apply_poll(self, response: httpx.Response, *, sent: Mapping[str, Any]) -> list[str]:
        """Apply a poll answer; returns the jtis whose SETs need a key refresh to be judged.

        The acks and refusals just sent are settled; the SETs received become the
        next request's acks (or refusals) once applied.
        """
        if response.status_code == 401:
            self.drop_token()
            raise FeedError("ssf poll: the token was refused; taking a new one")
        if response.status_code in (400, 404):
            # Gone, or no longer polled (a push receiver of the same name took it over).
            self.poll_url = None
            raise FeedError(f"ssf poll: HTTP {response.status_code}; looking for the stream again")
        doc = _json(response, "ssf poll")
        sets = doc.get("sets")
        if not isinstance(sets, Mapping):
            raise FeedError("ssf poll: the answer has no sets object")
        self.acks = [a for a in self.acks if a not in sent.get("ack", ())]
        for jti in sent.get("setErrs", {}):
            self.errors.pop(jti, None)
        retry: list[str] = []
        for jti, token in sets.items():
            if not isinstance(jti, str) or not isinstance(token, str):
                continue
            if not self._apply_set(jti, token):
                retry.append(jti)
        self.processor.state.mark_heard()
        self.processor.state.prune()
        self.processor.stats.feed_pages += 1
        self.processor.synced.set()
        return retry

    def _apply_set(self, jti: str, token: str) -> bool:
        """Verify and apply one SET; ``False`` when its key is not known yet."""
        try:
            claims = self.sets.check(token, jti=jti)
        except UnknownKid:
            return False
        except SetRefused as exc:
            self.errors[jti] = exc.refusal.as_json()
            return True
        self.sets.accept(claims, refuse_seen=False)
        self.acks.append(jti)
        return True

    def refuse_unknown_kid(self, jtis: list[str]) -> None:
        """After a JWKS refresh, SETs whose key is still unknown are refused."""
        for jti in jtis:
            self.errors[jti] = {"err": "invalid_key", "description": "unknown signing key"}


def _json(response: httpx.Response, what: str, *, expect: type = dict, status: int = 200) -> Any:
    if response.status_code != status:
        raise FeedError(f"{what}: HTTP {response.status_code}", status=response.status_code)
    if len(response.content) > _MAX_BODY:
        raise FeedError(f"{what}: the response is too large")
    try:
        doc = json.loads(response.content)
    except ValueError:
        raise FeedError(f"{what}: the response is not JSON") from None
    if not isinstance(doc, expect):
        raise FeedError(f"{what}: unexpected JSON")
    return doc
