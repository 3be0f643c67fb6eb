"""Following the auth server over Shared Signals poll delivery instead of the native feed.

With ``ServiceConfig(revocation_transport="ssf-poll")`` the service is an
OpenID SSF receiver (docs/ssf.md): it reads ``/.well-known/ssf-configuration``,
takes a client-credentials token with scope ``ssf:stream``, finds its poll
stream (or creates one) and long-polls it (RFC 8936). Every SET is verified
against the issuer's JWKS (RFC 8417: ``typ: secevent+jwt``, issuer, audience =
this client) and mapped back onto a :class:`~authmesh.revocation.RevocationEvent`
applied to the same :class:`RevocationState` as the native feed's.

Guarantees as the native feed's: a SET is acknowledged only after it was
applied, so after a restart the transmitter hands out again whatever was not
(catch-up); each poll answer proves liveness, so the staleness bound and fail
closed work unchanged. A SET that fails verification is refused with
``setErrs`` and never applied; one that cannot be checked yet (keys
unavailable) is left unacknowledged and retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from authmesh.jose import TokenRejected, UnknownKid, VerifyPolicy, verify_jwt
from authmesh.jose.policy import Clock
from authmesh.revocation import RevocationEvent
from authmesh.service._discovery import Discovery
from authmesh.service._feed import FeedProcessor
from authmesh.service._http import HttpClients, basic_authorization
from authmesh.service._jwks import JWKSCache
from authmesh.service._subscriber import FeedTask
from authmesh.service.errors import FeedError, FeedUnauthorized

__all__ = ["SsfPollSubscriber", "SsfStreamClient", "decode_set", "revocation_of"]

log = logging.getLogger(__name__)

POLL = "urn:ietf:rfc:8936"
SET_TYPES = frozenset({"secevent+jwt", "application/secevent+jwt"})
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
ACCOUNT_ENABLED = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
#: What a receiver asks its stream for.
EVENTS_REQUESTED = [SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED, ACCOUNT_ENABLED]
_MAX_EVENTS = 1000
_MAX_BODY = 8 * 1024 * 1024
#: RFC 8935 §2.3 error codes a refused SET is reported with.
_ERROR_OF: Mapping[str, str] = {
    "wrong_issuer": "invalid_issuer",
    "wrong_audience": "invalid_audience",
    "bad_signature": "authentication_failed",
    "unknown_kid": "invalid_key",
    "alg_not_allowed": "invalid_key",
}


def _policy(issuer: str, client_id: str, leeway: float) -> VerifyPolicy:
    return VerifyPolicy(
        issuer=issuer,
        audience=frozenset({client_id}),
        types=SET_TYPES,
        required_claims=frozenset({"iss", "aud", "iat", "jti", "events"}),
        leeway=leeway,
    )


def decode_set(
    token: str, keys: JWKSCache, policy: VerifyPolicy, *, clock: Clock
) -> dict[str, Any]:
    """The claims of a SET whose signature, type, issuer and audience check out.

    Raises:
        TokenRejected: the SET is not acceptable (report it, never apply it).
    """
    return verify_jwt(token, keys, policy, clock=clock).claims


def _numeric(value: object, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default


def revocation_of(
    claims: Mapping[str, Any], *, issuer: str, retention: float
) -> list[RevocationEvent]:
    """The revocations a verified SET announces (docs/ssf.md "Mapping"); may be none.

    A user subject (``iss_sub``) revokes the user's tokens issued before the
    event's ``event_timestamp``; a session (a ``complex`` subject's
    ``session``) or a token (``jwt_id``) is revoked outright. Account-enabled,
    verification and event types or subjects this receiver does not know
    revoke nothing.
    """
    events = claims.get("events")
    if not isinstance(events, Mapping):
        return []
    iat = _numeric(claims.get("iat"), time.time())
    subject = claims.get("sub_id")
    found: list[RevocationEvent] = []
    for event_type, payload in events.items():
        if event_type not in (SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED):
            continue
        body = payload if isinstance(payload, Mapping) else {}
        # Before SSF 1.0 the subject sat in the event; accept it there too.
        where = subject if isinstance(subject, Mapping) else body.get("subject")
        if not isinstance(where, Mapping):
            continue
        at = _numeric(body.get("event_timestamp"), iat)
        kind_value = _kind_and_value(where, issuer, sessions=event_type == SESSION_REVOKED)
        if kind_value is None:
            continue
        kind, value = kind_value
        found.append(
            RevocationEvent(
                kind=kind,  # type: ignore[arg-type]
                value=value,
                not_before=at,
                expires_at=max(at, iat) + retention,
            )
        )
    return found


def _kind_and_value(
    subject: Mapping[str, Any], issuer: str, *, sessions: bool
) -> tuple[str, str] | None:
    fmt = subject.get("format")
    if fmt == "iss_sub" and subject.get("iss") == issuer and isinstance(subject.get("sub"), str):
        return "sub", subject["sub"]
    if not sessions:
        if fmt == "complex" and isinstance(subject.get("user"), Mapping):
            return _kind_and_value(subject["user"], issuer, sessions=False)
        return None
    if fmt == "jwt_id" and subject.get("iss") == issuer and isinstance(subject.get("jti"), str):
        return "jti", subject["jti"]
    if fmt == "complex":
        session = subject.get("session")
        if isinstance(session, Mapping) and session.get("format") == "opaque":
            sid = session.get("id")
            if isinstance(sid, str) and sid:
                return "sid", sid
        user = subject.get("user")
        if isinstance(user, Mapping):
            return _kind_and_value(user, issuer, sessions=False)
    return None


@dataclass
class SsfStreamClient:
    """The receiver's side of one poll stream: its endpoints, token, acks and refusals."""

    processor: FeedProcessor
    keys: JWKSCache
    clock: Clock = time.time
    poll_url: str | None = None
    _token: str | None = None
    _token_expires: float = 0.0
    acks: list[str] = field(default_factory=list)
    errors: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        config = self.processor.config
        assert config.client_id is not None and config.client_secret is not None
        self.client_id = config.client_id
        self._basic = basic_authorization(config.client_id, config.client_secret)
        self.policy = _policy(config.issuer, config.client_id, config.leeway.total_seconds())
        self.retention = config.ssf_event_retention.total_seconds()

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
        lifetime = _numeric(doc.get("expires_in"), 300.0)
        self._token = token
        self._token_expires = time.monotonic() + max(5.0, lifetime - 30.0)

    @property
    def bearer(self) -> dict[str, str]:
        """The stream endpoints' ``Authorization``."""
        return {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}

    def check_metadata(self, response: httpx.Response) -> Mapping[str, Any]:
        """The transmitter metadata, for this issuer, offering poll delivery."""
        doc: dict[str, Any] = _json(response, "ssf-configuration")
        config = self.processor.config
        if doc.get("issuer") != config.issuer:
            raise FeedError("ssf-configuration: the issuer is not the configured one")
        if POLL not in (doc.get("delivery_methods_supported") or []):
            raise FeedError("ssf-configuration: the transmitter does not offer poll delivery")
        endpoint = doc.get("configuration_endpoint")
        if not isinstance(endpoint, str):
            raise FeedError("ssf-configuration: no configuration_endpoint")
        config.check_url(endpoint, what="ssf configuration_endpoint")
        return doc

    @property
    def description(self) -> str:
        """How this instance's stream is told apart from its replicas' (``ssf_receiver_name``)."""
        config = self.processor.config
        name = config.ssf_receiver_name or ",".join(sorted(config.audiences))
        return f"authmesh receiver {name}"[:500]

    def pick_stream(self, response: httpx.Response) -> str | None:
        """The poll URL of this instance's stream, if the client has one."""
        streams = _json(response, "ssf streams", expect=list)
        for stream in streams:
            if not isinstance(stream, Mapping) or stream.get("description") != self.description:
                continue
            delivery = stream.get("delivery")
            if isinstance(delivery, Mapping) and delivery.get("method") == POLL:
                return self._poll_url(delivery)
        return None

    def new_stream_body(self) -> dict[str, Any]:
        """What a new stream asks for."""
        return {
            "delivery": {"method": POLL},
            "events_requested": EVENTS_REQUESTED,
            "description": self.description,
        }

    def created_stream(self, response: httpx.Response) -> str:
        """The poll URL of a stream just created."""
        if response.status_code != 201:
            raise FeedError(f"ssf: creating a stream failed with HTTP {response.status_code}")
        doc = _json(response, "ssf stream", status=201)
        delivery = doc.get("delivery")
        if not isinstance(delivery, Mapping):
            raise FeedError("ssf stream: no delivery")
        return self._poll_url(delivery)

    def _poll_url(self, delivery: Mapping[str, Any]) -> str:
        url = delivery.get("endpoint_url")
        if not isinstance(url, str):
            raise FeedError("ssf stream: the poll delivery has no endpoint_url")
        self.processor.config.check_url(url, what="ssf poll endpoint")
        return url

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
            self._token = None
            raise FeedError("ssf poll: the token was refused; taking a new one")
        if response.status_code == 404:
            self.poll_url = None
            raise FeedError("ssf poll: the stream is gone; looking for it again")
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
            claims = decode_set(token, self.keys, self.policy, clock=self.clock)
            if claims.get("jti") != jti:
                raise FeedError("the SET's jti is not the one it was delivered under")
        except UnknownKid:
            return False
        except (TokenRejected, FeedError) as exc:
            reason = getattr(exc, "reason", "invalid_request")
            err = _ERROR_OF.get(reason, "invalid_request")
            log.warning("ssf: refused SET %s: %s", jti[:64], exc)
            self.errors[jti] = {"err": err, "description": str(exc)[:200]}
            self.processor.stats.rejected["ssf_set_" + err] += 1
            return True
        for event in revocation_of(
            claims, issuer=self.processor.config.issuer, retention=self.retention
        ):
            self.processor.state.apply(event)
            self.processor.stats.feed_events += 1
        self.acks.append(jti)
        return True

    def refuse_unknown_kid(self, jtis: list[str]) -> None:
        """After a JWKS refresh, SETs whose key is still unknown are refused."""
        for jti in jtis:
            self.errors[jti] = {"err": "invalid_key", "description": "unknown signing key"}


def _json(response: httpx.Response, what: str, *, expect: type = dict, status: int = 200) -> Any:
    if response.status_code != status:
        raise FeedError(f"{what}: HTTP {response.status_code}")
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
                immediately = True
                continue
            retry = stream.apply_poll(response, sent=body)
            if retry:
                generation = self._keys.generation
                if not await self._keys.arefresh_unknown_kid(generation):
                    raise FeedError(
                        "ssf: a SET names an unknown key and the JWKS cannot be refetched now"
                    )
                await self._redo(client, retry)
            # Ask without holding while a backlog drains; hold (long poll) once caught up.
            immediately = bool(stream.acks) or bool(stream.errors)

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
        stream = self.stream
        url = self.processor.config.issuer.rstrip("/") + "/.well-known/ssf-configuration"
        metadata = stream.check_metadata(await client.get(url, timeout=self._timeout))
        await self._take_token(client)
        endpoint = metadata["configuration_endpoint"]
        found = stream.pick_stream(
            await client.get(endpoint, headers=stream.bearer, timeout=self._timeout)
        )
        if found is None:
            created = await client.post(
                endpoint,
                json=stream.new_stream_body(),
                headers=stream.bearer,
                timeout=self._timeout,
            )
            found = stream.created_stream(created)
        stream.poll_url = found


class ThreadedSsfPollSubscriber:
    """:class:`SsfPollSubscriber` in a daemon thread (WSGI services): its own event loop."""

    def __init__(
        self,
        processor: FeedProcessor,
        discovery: Discovery,
        http: HttpClients,
        keys: JWKSCache,
    ) -> None:
        self.processor = processor
        self._args = (processor, discovery, http, keys)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inner: SsfPollSubscriber | None = None

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start following in a thread (idempotent)."""
        if self.running:
            return
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._inner = SsfPollSubscriber(*self._args)
            loop.run_until_complete(self._inner.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._inner.stop())
            # This loop's HTTP client goes with it (the service closes the rest).
            loop.run_until_complete(self._args[2].aclose())
            loop.close()

        self._thread = threading.Thread(target=run, name="authmesh-ssf-poll", daemon=True)
        self._thread.start()
        ready.wait(5)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and the thread."""
        loop, thread = self._loop, self._thread
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout)
        self._thread = self._loop = None
        self.processor.connected = False

    def wait_synced(self, timeout: float) -> bool:
        """Wait until the first poll answer was applied."""
        return self.processor.synced.wait(timeout)
