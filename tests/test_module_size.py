"""Small modules with one job each: no module of the package over 400 lines."""

from __future__ import annotations

from pathlib import Path

import authmesh

PACKAGE = Path(authmesh.__file__).parent
LIMIT = 400


def test_no_module_is_over_400_lines() -> None:
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert sizes, "no module found"
    assert {name: n for name, n in sizes.items() if n > LIMIT} == {}
