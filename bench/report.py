"""``bench/RESULTS.md``: a generated header, then one marked section per part.

Running some parts (``--only``) replaces their sections and keeps the others'
from the previous file, each section carrying its own date and commit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["RESULTS", "PartResult", "read_sections", "render", "write"]

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

_SECTION = re.compile(
    r"<!-- part:(?P<name>[a-z0-9_]+) -->\n(?P<body>.*?)<!-- /part:(?P=name) -->", re.S
)


@dataclass(frozen=True, slots=True)
class PartResult:
    """What a part produced: its Markdown section and a few lines for the console."""

    markdown: str
    summary: list[str] = field(default_factory=list)


def read_sections(path: Path = RESULTS) -> dict[str, str]:
    """The part sections of an existing results file, by part name."""
    if not path.exists():
        return {}
    return {m["name"]: m["body"] for m in _SECTION.finditer(path.read_text())}


def render(header: str, sections: Mapping[str, str], order: list[str]) -> str:
    """The whole file: the header, then the sections in ``order`` (unknown ones last)."""
    names = [n for n in order if n in sections] + sorted(set(sections) - set(order))
    parts = [f"<!-- part:{n} -->\n{sections[n].rstrip()}\n<!-- /part:{n} -->\n" for n in names]
    return header.rstrip() + "\n\n" + "\n".join(parts)


def write(header: str, fresh: Mapping[str, str], order: list[str], path: Path = RESULTS) -> None:
    """Replace the sections in ``fresh`` and the header; keep the other sections."""
    sections = read_sections(path)
    sections.update(fresh)
    path.write_text(render(header, sections, order))
