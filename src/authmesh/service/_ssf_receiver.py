"""Following the auth server over Shared Signals poll delivery instead of the native feed.

With ``ServiceConfig(revocation_transport="ssf-poll")`` the service is an
OpenID SSF receiver (docs/ssf.md): it reads ``/.well-known/ssf-configuration``,
takes a client-credentials token with scope ``ssf:stream``, finds its stream
(or creates one) and long-polls it (RFC 8936). Every SET goes through
:class:`~authmesh.service._ssf_sets.SetReader` (verified against the issuer's
JWKS, mapped back onto revocations applied to the same
:class:`RevocationState` as the native feed's).

Guarantees as the native feed's: a SET is acknowledged only after it was
applied, so after a restart the transmitter hands out again whatever was not
(catch-up); each poll answer proves liveness, so the staleness bound and fail
closed work unchanged. A SET that fails verification is refused with
``setErrs`` and never applied; one that cannot be checked yet (keys
unavailable) is left unacknowledged and retried.

The push receiver (:mod:`._ssf_push_task`) catches up the same way at start,
so :class:`SsfStreamClient` manages a stream of either delivery method.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from authmesh.jose import UnknownKid
from authmesh.jose.policy import Clock
from authmesh.service._discovery import Discovery
from authmesh.service._feed import FeedProcessor
from authmesh.service._http import HttpClients, basic_authorization
from authmesh.service._jwks import JWKSCache
from authmesh.service._ssf_sets import EVENTS_REQUESTED, SetReader, SetRefused, numeric
from authmesh.service._subscriber import FeedTask
from authmesh.service.errors import FeedError, FeedUnauthorized

__all__ = ["POLL", "PUSH", "SsfPollSubscriber", "SsfStreamClient"]

log = logging.getLogger(__name__)

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


class SsfPollSubscriber(FeedTask):
    """Follows the issuer's SSF poll stream in an asyncio task (the ASGI counterpart of
    :class:`~authmesh.service._subscriber.RevocationSubscriber`)."""

    task_name = "authmesh-ssf-poll"
    #: What the transmitter must offer.
    methods: ClassVar[tuple[str, ...]] = (POLL,)

    def __init__(
        self,
        processor: FeedProcessor,
        discovery: Discovery,
        http: HttpClients,
        keys: JWKSCache,
    ) -> None:
        self.processor = processor
        self.stream = SsfStreamClient(processor, keys)
        self._discovery = discovery
        self._http = http
        self._keys = keys
        self._task: asyncio.Task[None] | None = None
        # Longer than the transmitter's long-poll hold; a silent stream is dead.
        self._timeout = httpx.Timeout(
            processor.config.http_timeout.total_seconds(), read=processor.read_timeout
        )
        #: The longest this receiver lets a long poll be held: an answer is what proves
        #: liveness, so one must come well within the staleness bound, whatever the
        #: transmitter's own hold (RFC 8936 lets the receiver set none).
        self.hold = processor.config.max_feed_staleness.total_seconds() / 2

    async def _run(self) -> None:
        attempt = 0
        proc = self.processor
        while True:
            heard = proc.state.last_heard
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (FeedError, httpx.HTTPError, ValueError) as exc:
                proc.failed(exc)
            except Exception as exc:  # never let the task die: that would fail closed forever
                log.exception("ssf receiver: unexpected error")
                proc.failed(exc)
            if proc.state.last_heard != heard:
                attempt = 0
            await asyncio.sleep(proc.backoff(attempt))
            attempt += 1

    async def _session(self) -> None:
        stream, client = self.stream, self._http.async_client()
        if stream.poll_url is None or stream.token_due():
            await self._connect(client)
        proc = self.processor
        proc.mode, proc.connected = "ssf-poll", True
        proc.stats.feed_connects += 1
        immediately = True
        while True:
            immediately = await self._poll(client, immediately=immediately)

    async def _catch_up(self, client: httpx.AsyncClient) -> None:
        """Poll without holding until an answer brings nothing (its acks sent)."""
        while await self._poll(client, immediately=True):
            pass

    async def _poll(self, client: httpx.AsyncClient, *, immediately: bool) -> bool:
        """One poll; returns whether the next should not be held (a backlog, or acks to send)."""
        stream = self.stream
        if stream.token_due():
            await self._take_token(client)
        assert stream.poll_url is not None
        body = stream.poll_body(immediately=immediately)
        request = client.post(
            stream.poll_url, json=body, headers=stream.bearer, timeout=self._timeout
        )
        try:
            response = await (request if immediately else asyncio.wait_for(request, self.hold))
        except TimeoutError:
            # Held past our bound: hang up (nothing was handed out that is not
            # delivered again) and ask for an immediate answer.
            return True
        retry = stream.apply_poll(response, sent=body)
        if retry:
            generation = self._keys.generation
            if not await self._keys.arefresh_unknown_kid(generation):
                raise FeedError(
                    "ssf: a SET names an unknown key and the JWKS cannot be refetched now"
                )
            await self._redo(client, retry)
        # Ask without holding while a backlog drains; hold (long poll) once caught up.
        return bool(stream.acks) or bool(stream.errors)

    async def _redo(self, client: httpx.AsyncClient, jtis: list[str]) -> None:
        """Ask again for SETs whose key was unknown: they were not acknowledged."""
        stream = self.stream
        assert stream.poll_url is not None
        body = stream.poll_body(immediately=True)
        response = await client.post(
            stream.poll_url, json=body, headers=stream.bearer, timeout=self._timeout
        )
        still = stream.apply_poll(response, sent=body)
        stream.refuse_unknown_kid([jti for jti in still if jti in jtis])

    async def _take_token(self, client: httpx.AsyncClient) -> None:
        meta = await self._discovery.aget()
        if meta.token_endpoint is None:
            raise FeedError("discovery names no token_endpoint")
        response = await client.post(
            meta.token_endpoint, **self.stream.token_request(), timeout=self._timeout
        )
        self.stream.take_token(response)

    async def _connect(self, client: httpx.AsyncClient) -> None:
        """Find this instance's stream (creating it on first start), delivered by poll."""
        stream = self.stream
        url = self.processor.config.issuer.rstrip("/") + "/.well-known/ssf-configuration"
        stream.check_metadata(await client.get(url, timeout=self._timeout), self.methods)
        await self._take_token(client)
        endpoint = stream.configuration_endpoint
        assert endpoint is not None
        found = stream.pick_stream(
            await client.get(endpoint, headers=stream.bearer, timeout=self._timeout)
        )
        if found is None:
            created = await client.post(
                endpoint,
                json=stream.new_stream_body({"method": POLL}),
                headers=stream.bearer,
                timeout=self._timeout,
            )
            stream.adopt(stream.stream_answer(created, status=201))
            return
        stream.adopt(found)
        if stream.poll_url is None:
            # Delivered by push until now: what it holds is polled from here on.
            await self._deliver_by(client, {"method": POLL})

    async def _deliver_by(self, client: httpx.AsyncClient, delivery: Mapping[str, Any]) -> None:
        """Give the stream this delivery; the transmitter retries what is pending at once."""
        stream = self.stream
        if stream.token_due():
            await self._take_token(client)
        assert stream.configuration_endpoint is not None
        response = await client.patch(
            stream.configuration_endpoint,
            json=stream.delivery_update(delivery),
            headers=stream.bearer,
            timeout=self._timeout,
        )
        if response.status_code == 404:
            stream.poll_url = stream.stream_id = None
        stream.adopt(stream.stream_answer(response, status=200))
