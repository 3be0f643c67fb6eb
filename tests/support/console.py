"""A console user over plain HTTP: signs in through the real browser sign-in and posts
the consoles' forms with their CSRF token."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx

from support.harness import Api

__all__ = ["ConsoleClient", "csrf_of"]

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token in a console page's forms."""
    found = _CSRF.search(page.text)
    assert found, page.text[:500]
    return html.unescape(found.group(1))


class ConsoleClient:
    """One browser's cookie jar; redirects are followed by hand so each hop is checked."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.http = httpx.Client(base_url=api.url, follow_redirects=False, timeout=15)

    def close(self) -> None:
        self.http.close()

    def follow(self, response: httpx.Response, *, hops: int = 10) -> httpx.Response:
        """Follow redirects on this server (never to another origin)."""
        for _ in range(hops):
            if response.status_code not in (302, 303):
                return response
            location = response.headers["location"]
            assert location.startswith(("/", self.api.url)), location
            response = self.http.get(location)
        raise AssertionError("too many redirects")

    def sign_in(self, username: str, password: str, path: str = "/account") -> httpx.Response:
        """Open ``path``, sign in on the sign-in page, and return the page reached."""
        page = self.follow(self.http.get(path))
        assert 'action="/login"' in page.text, page.text[:500]
        fields = dict(re.findall(r'name="(csrf_token|request)" value="([^"]*)"', page.text))
        done = self.http.post(
            "/login",
            data={
                **{k: html.unescape(v) for k, v in fields.items()},
                "username": username,
                "password": password,
            },
        )
        return self.follow(done)

    def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True
    ) -> httpx.Response:
        """Post a console form (with this browser's CSRF token unless told not to)."""
        form: dict[str, Any] = dict(data or {})
        if csrf:
            form["csrf_token"] = csrf_of(self.http.get("/account"))
        return self.http.post(path, data=form)
