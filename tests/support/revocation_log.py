"""An in-memory revocation log for the feed's unit tests."""

from __future__ import annotations

import asyncio

from authmesh.revocation import RevocationEvent

__all__ = ["Log"]


class Log:
    """The revocation log as a list, counting reads."""

    def __init__(self) -> None:
        self.events: list[RevocationEvent] = []
        self.reads = 0

    def write(self, n: int = 1, *, expires_at: float = 1e12) -> int:
        for _ in range(n):
            cursor = len(self.events) + 1
            self.events.append(
                RevocationEvent(
                    kind="jti",
                    value=f"t{cursor}",
                    not_before=0.0,
                    expires_at=expires_at,
                    cursor=cursor,
                )
            )
        return len(self.events)

    async def read(self, cursor: int, now: float, limit: int) -> list[RevocationEvent]:
        self.reads += 1
        await asyncio.sleep(0)  # a real read yields to the loop
        live = [e for e in self.events if e.cursor > cursor and e.expires_at > now]
        return live[:limit]
