"""The inspector's HTTP to an issuer: small JSON documents, every failure a usage error."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from authmesh.errors import ConfigError

__all__ = ["get_json", "post_form"]

_MAX_DOCUMENT_BYTES = 1 << 20
_ACCEPT_JSON = {"Accept": "application/json"}


def get_json(url: str, *, timeout: float) -> dict[str, Any]:
    """GET the JSON object at ``url``, following redirects.

    Raises:
        ConfigError: unreachable, not a 200, too large, or not a JSON object.
    """
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True, headers=_ACCEPT_JSON)
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot fetch {url}: {exc or type(exc).__name__}") from None
    return _json_object(url, response, failed=f"cannot fetch {url}")


def post_form(
    url: str, form: Mapping[str, str], *, auth: httpx.Auth, timeout: float
) -> dict[str, Any]:
    """POST ``form`` to ``url`` with client credentials; the JSON object it answers.

    Redirects are not followed: the credentials go to ``url`` and nowhere else.

    Raises:
        ConfigError: unreachable, not a 200, too large, or not a JSON object.
    """
    try:
        response = httpx.post(
            url, data=dict(form), auth=auth, timeout=timeout, headers=_ACCEPT_JSON
        )
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach {url}: {exc or type(exc).__name__}") from None
    if response.status_code != 200:
        failed = f"{url} refused the request: HTTP {response.status_code}"
        raise ConfigError(failed + _oauth_error(response))
    return _json_object(url, response, failed=f"{url} refused the request")


def _json_object(url: str, response: httpx.Response, *, failed: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise ConfigError(f"{failed}: HTTP {response.status_code}")
    if len(response.content) > _MAX_DOCUMENT_BYTES:
        raise ConfigError(f"{url} answered with more than {_MAX_DOCUMENT_BYTES} bytes")
    try:
        doc = json.loads(response.content)
    except ValueError:
        raise ConfigError(f"{url} did not answer with JSON") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{url} did not answer with a JSON object")
    return doc


def _oauth_error(response: httpx.Response) -> str:
    """`` (invalid_client)`` when the body is an RFC 6749 §5.2 error, else nothing."""
    try:
        error = json.loads(response.content[:_MAX_DOCUMENT_BYTES]).get("error")
    except (ValueError, AttributeError):
        return ""
    shown = isinstance(error, str) and error.isprintable() and len(error) < 64
    return f" ({error})" if shown else ""
