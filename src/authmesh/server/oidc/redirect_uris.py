"""Registered redirect URIs: what may be registered, and how a presented one matches.

Matching is exact string comparison (RFC 9700 §4.1.3), with one exception: a
loopback IP redirect of a native app matches on any port (RFC 8252 §7.3),
because the app listens on whatever port the OS gives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

__all__ = ["check_redirect_uri", "redirect_uri_matches"]

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]"})
_MAX_LENGTH = 2000


def check_redirect_uri(uri: str) -> str:
    """A redirect URI fit to register, else ``ValueError`` with the reason.

    Allowed: ``https`` URLs; ``http`` only on loopback (``127.0.0.1``, ``[::1]``,
    ``localhost``) for development and native apps; and private-use schemes of
    native apps in reverse domain notation (``com.example.app:/callback``,
    RFC 8252 §7.1). Never a fragment (RFC 6749 §3.1.2).
    """
    if not uri or len(uri) > _MAX_LENGTH or any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in uri):
        raise ValueError(f"redirect URI {uri[:100]!r} must be 1-2000 printable characters")
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise ValueError(f"redirect URI {uri[:100]!r} must not have a fragment")
    scheme = parts.scheme.lower()
    if scheme == "https" and parts.netloc:
        return uri
    if scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost"):
        return uri
    if scheme not in ("http", "https", "javascript", "data", "file", "") and "." in scheme:
        return uri
    raise ValueError(
        f"redirect URI {uri[:100]!r} must be https, http on loopback, "
        "or a private-use scheme like com.example.app:/callback"
    )


def _without_port(uri: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme != "http":
        return None
    host = parts.netloc.rsplit("@", 1)[-1]
    if host.startswith("["):
        bare = host[: host.find("]") + 1]
    else:
        bare = host.split(":", 1)[0]
    if bare not in _LOOPBACK_HOSTS:
        return None
    return urlunsplit((parts.scheme, bare, parts.path, parts.query, ""))


def redirect_uri_matches(registered: Sequence[str], presented: str) -> bool:
    """Whether ``presented`` is one of the client's registered redirect URIs."""
    if presented in registered:
        return True
    loose = _without_port(presented)
    return loose is not None and any(_without_port(uri) == loose for uri in registered)
