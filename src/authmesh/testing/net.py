"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import socket

__all__ = ["free_port"]


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago.

    Another process may take it before it is bound again; a server that binds
    port 0 itself (as :class:`~authmesh.testing.UvicornThread` does) has no such race.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
