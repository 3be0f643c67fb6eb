"""The README's "Protect a service" examples: valid Python, and the FastAPI ones run."""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from authmesh.service import ServiceAuth

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Protect a service") :]
    section = section[: section.index("\n## ", 1)]
    fences = re.findall(r"^( *)```python\n(.*?)^\1```", section, flags=re.S | re.M)
    return [textwrap.dedent(body) for _, body in fences]


BLOCKS = _blocks()


def test_the_section_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.splitlines()[0][:40])
def test_example_is_valid_python(block: str) -> None:
    ast.parse(block)


def test_fastapi_examples_run() -> None:
    fastapi_blocks = [b for b in BLOCKS if "authmesh.service.fastapi" in b]
    namespace: dict[str, Any] = {}
    for block in fastapi_blocks:
        exec(compile(block, str(README), "exec"), namespace)
    app = namespace["app"]
    assert isinstance(app, FastAPI)
    assert isinstance(namespace["auth"], ServiceAuth)
    paths = {getattr(route, "path", None) for route in app.routes}
    assert {"/orders", "/orders/{order_id}", "/me"} <= paths
