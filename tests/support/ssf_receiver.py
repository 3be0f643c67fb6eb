"""A Shared Signals receiver written from the specifications only, for interop tests.

It knows OpenID SSF 1.0 (metadata, streams, verification), RFC 8936 (poll),
RFC 8417 (SETs), RFC 9493 (subject identifiers) and RFC 6749 (client
credentials); it uses joserfc to verify SETs with the issuer's JWKS and httpx
for HTTP, and nothing of authmesh.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

__all__ = ["POLL", "PUSH", "PushEndpoint", "ReceivedEvent", "SpecReceiver", "push_endpoint"]

POLL = "urn:ietf:rfc:8936"
PUSH = "urn:ietf:rfc:8935"


@dataclass(frozen=True)
class ReceivedEvent:
    """One verified SET, reduced to what a receiver acts on."""

    jti: str
    event_type: str
    subject: dict[str, Any]
    payload: dict[str, Any]
    header: dict[str, Any]


@dataclass
class SpecReceiver:
    """An SSF poll receiver: discovers, authenticates, creates a stream, polls and acks."""

    issuer: str
    client_id: str
    client_secret: str
    http: httpx.Client = field(init=False)
    metadata: dict[str, Any] = field(default_factory=dict)
    stream: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.http = httpx.Client(timeout=15)
        self.metadata = self.http.get(f"{self.issuer}/.well-known/ssf-configuration").json()
        oauth = self.http.get(f"{self.issuer}/.well-known/openid-configuration").json()
        answer = self.http.post(
            oauth["token_endpoint"],
            data={"grant_type": "client_credentials", "scope": "ssf:stream"},
            auth=(self.client_id, self.client_secret),
        )
        answer.raise_for_status()
        self.token = answer.json()["access_token"]

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    @property
    def headers(self) -> dict[str, str]:
        """The stream endpoints' authorization (SSF 1.0 §9.1: an OAuth bearer token)."""
        return {"Authorization": f"Bearer {self.token}"}

    def create_stream(self, events: list[str], delivery: dict[str, Any] | None = None) -> None:
        """SSF 1.0 §8.1.1.1: create a stream asking for ``events``."""
        body = {"delivery": delivery or {"method": POLL}, "events_requested": events}
        answer = self.http.post(
            self.metadata["configuration_endpoint"], json=body, headers=self.headers
        )
        assert answer.status_code == 201, answer.text
        self.stream = answer.json()

    def request_verification(self, state: str) -> None:
        """SSF 1.0 §8.1.4.2: ask the transmitter for a verification event."""
        answer = self.http.post(
            self.metadata["verification_endpoint"],
            json={"stream_id": self.stream["stream_id"], "state": state},
            headers=self.headers,
        )
        assert answer.status_code == 204, answer.text

    def poll(
        self, *, ack: list[str] | None = None, max_events: int = 100, immediately: bool = True
    ) -> tuple[dict[str, str], bool]:
        """RFC 8936 §2.1: acknowledge ``ack``; returns the SETs (by jti) and moreAvailable."""
        body = {"ack": ack or [], "maxEvents": max_events, "returnImmediately": immediately}
        answer = self.http.post(
            self.stream["delivery"]["endpoint_url"], json=body, headers=self.headers
        )
        assert answer.status_code == 200, answer.text
        doc = answer.json()
        return dict(doc["sets"]), bool(doc.get("moreAvailable"))

    def key_set(self) -> KeySet:
        """The transmitter's JWKS, from its metadata's ``jwks_uri``."""
        return KeySet.import_key_set(self.http.get(self.metadata["jwks_uri"]).json())

    def verify(self, jti: str, token: str, keys: KeySet) -> ReceivedEvent:
        """RFC 8417 §2, SSF 1.0 §4: signature, ``typ``, issuer, audience and one event."""
        decoded = jwt.decode(token, keys, algorithms=_ALGORITHMS)
        assert decoded.header["typ"] == "secevent+jwt"
        JWTClaimsRegistry(
            iss={"essential": True, "value": self.metadata["issuer"]},
            aud={"essential": True, "value": self.client_id},
            jti={"essential": True, "value": jti},
            iat={"essential": True},
        ).validate(decoded.claims)
        events = decoded.claims["events"]
        assert isinstance(events, dict) and len(events) == 1
        ((event_type, payload),) = events.items()
        subject = decoded.claims["sub_id"]
        assert isinstance(subject, dict) and isinstance(subject.get("format"), str)
        return ReceivedEvent(jti, event_type, subject, payload, dict(decoded.header))

    def receive_all(self) -> list[ReceivedEvent]:
        """Poll until nothing is left, verifying and acknowledging every SET."""
        keys = self.key_set()
        received: list[ReceivedEvent] = []
        ack: list[str] = []
        while True:
            sets, more = self.poll(ack=ack)
            received += [self.verify(jti, token, keys) for jti, token in sets.items()]
            ack = list(sets)
            if not sets and not more:
                return received


#: What the transmitter may sign with (its JWKS says which; any of these is acceptable).
_ALGORITHMS = ["EdDSA", "ES256", "RS256"]


@dataclass
class PushEndpoint:
    """What an RFC 8935 push endpoint received, and how it answers the next requests."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    #: Statuses to answer with, first to last; 202 once they run out.
    script: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self) -> list[str]:
        """The SETs answered with 202 (what a receiver would process)."""
        with self.lock:
            return [body.decode() for headers, body in self.received if headers["status"] == "202"]


@contextmanager
def push_endpoint() -> Iterator[PushEndpoint]:
    """An RFC 8935 SET recipient on a loopback port (stdlib HTTP server in a thread)."""
    endpoint = PushEndpoint(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with endpoint.lock:
                status = endpoint.script.pop(0) if endpoint.script else 202
                headers = {k.lower(): v for k, v in self.headers.items()}
                endpoint.received.append(({**headers, "status": str(status)}, body))
            self.send_response(status)
            if status == 400:
                # RFC 8935 §2.3: an error the transmitter must not retry.
                payload = b'{"err":"invalid_request","description":"refused by the test"}'
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
