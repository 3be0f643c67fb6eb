"""What ``authmesh doctor`` says about one thing: OK, WARN or FAIL, and why."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Finding", "Status"]


class Status(enum.Enum):
    """How a check came out; only FAIL makes ``doctor`` exit non-zero."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report: the topic checked, how it came out, and a sentence."""

    status: Status
    topic: str
    message: str

    def line(self, topic_width: int = 0) -> str:
        """``STATUS  topic  message``, aligned."""
        return f"{self.status.value:<4}  {self.topic:<{topic_width}}  {self.message}"


def ok(topic: str, message: str) -> Finding:
    """An OK finding."""
    return Finding(Status.OK, topic, message)


def warn(topic: str, message: str) -> Finding:
    """A WARN finding."""
    return Finding(Status.WARN, topic, message)


def fail(topic: str, message: str) -> Finding:
    """A FAIL finding."""
    return Finding(Status.FAIL, topic, message)
