"""A bounded LRU of already-verified tokens: the cheap path for a token seen before.

Keyed by the token string itself: the cached :class:`Principal` holds that very
string already, so the key costs no memory, and a dict lookup (hash plus one
comparison) is cheaper than computing a digest. An entry carries the instant
the token core would start rejecting the token as expired (``exp + leeway``,
RFC 7519 §4.1.4), and is never used at or after it.
"""

from __future__ import annotations

from collections import OrderedDict

from authmesh.service.principal import Principal

__all__ = ["VerifiedCache"]


class VerifiedCache:
    """``token -> (deadline, principal)``, least recently used evicted first.

    Safe to share between threads without a lock: each operation is one atomic
    ``OrderedDict`` call, and a lost race only costs a re-verification.
    """

    __slots__ = ("_data", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    def get(self, token: str, now: float) -> Principal | None:
        """The principal of a cached token still before its deadline, else ``None``."""
        entry = self._data.get(token)
        if entry is None:
            return None
        if now >= entry[0]:
            self._data.pop(token, None)
            return None
        try:
            self._data.move_to_end(token)
        except KeyError:  # evicted by another thread meanwhile
            pass
        return entry[1]

    def put(self, token: str, deadline: float, principal: Principal) -> None:
        """Remember a verified token until ``deadline``."""
        if self.maxsize <= 0:
            return
        data = self._data
        data[token] = (deadline, principal)
        while len(data) > self.maxsize:
            try:
                data.popitem(last=False)
            except KeyError:
                break

    def __contains__(self, token: object) -> bool:
        """Whether ``token`` passed verification and is still held (expired or not)."""
        return token in self._data

    def clear(self) -> None:
        """Forget everything (a signing key was withdrawn)."""
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
