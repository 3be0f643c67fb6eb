"""A minimal browser for the ``signin`` part: one keep-alive connection and a cookie jar.

It does what a browser does on the sign-in pages (keep cookies, post the form's
hidden fields, not follow the redirect to the client) over raw HTTP/1.1 on
asyncio, so that the load generator costs little next to the server it loads.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

__all__ = ["Answer", "Browser", "pkce_pair"]

_HIDDEN = re.compile(rb'name="(csrf_token|request)" value="([^"]*)"')


def pkce_pair() -> tuple[str, str]:
    """A fresh PKCE verifier and its S256 challenge (RFC 7636 §4.1-4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(slots=True)
class Answer:
    """One HTTP response: status, headers (lower-case names, repeats kept) and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header, if present."""
        return next((v for k, v in self.headers if k == name), None)

    def hidden_fields(self) -> dict[str, str]:
        """The hidden fields of the page's form (``csrf_token``, ``request``)."""
        return {k.decode(): html.unescape(v.decode()) for k, v in _HIDDEN.findall(self.body)}

    def redirect_query(self) -> dict[str, str]:
        """The query parameters of the ``Location`` this answer redirects to."""
        location = self.header("location") or ""
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Browser:
    """A cookie jar over one keep-alive connection; :meth:`forget` starts a fresh jar."""

    port: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    cookies: dict[str, str] = field(default_factory=dict)

    @classmethod
    async def open(cls, port: int) -> Browser:
        """Connect to the server on the loopback port."""
        return cls(port, *await asyncio.open_connection("127.0.0.1", port))

    def forget(self) -> None:
        """Drop every cookie, as a new browser profile would have none."""
        self.cookies.clear()

    async def get(self, path: str, query: dict[str, str]) -> Answer:
        """``GET path?query`` with this jar's cookies."""
        return await self._send(f"GET {path}?{urlencode(query)} HTTP/1.1\r\n", b"", None)

    async def post(self, path: str, form: dict[str, str]) -> Answer:
        """Post a URL-encoded form with this jar's cookies."""
        body = urlencode(form).encode()
        return await self._send(
            f"POST {path} HTTP/1.1\r\n", body, "application/x-www-form-urlencoded"
        )

    async def _send(self, start: str, body: bytes, content_type: str | None) -> Answer:
        lines = [start, "Host: 127.0.0.1\r\n"]
        if self.cookies:
            jar = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            lines.append(f"Cookie: {jar}\r\n")
        if content_type:
            lines.append(f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n")
        request = "".join(lines).encode() + b"\r\n" + body
        self.writer.write(request)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                raise
            # The server closed the idle keep-alive connection (uvicorn does after 5 s,
            # as while the other flow's window runs): reconnect and send again, as a
            # browser does. Nothing was answered, so nothing was done.
            self.writer.close()
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        headers = []
        for line in head.decode("latin-1").split("\r\n")[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers.append((name.strip().lower(), value.strip()))
        answer = Answer(status, headers, b"")
        length = int(answer.header("content-length") or 0)
        answer.body = await self.reader.readexactly(length) if length else b""
        for name, value in headers:
            if name == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, val = pair.partition("=")
                self.cookies[key.strip()] = val.strip().strip('"')
        return answer

    def close(self) -> None:
        """Close the connection."""
        self.writer.close()
