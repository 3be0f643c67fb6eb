"""The root error tree: its docstring draws every error class authmesh defines."""

from __future__ import annotations

import importlib
import pkgutil
import re

import authmesh
import authmesh.errors
from authmesh.errors import AuthmeshError

#: Modules that do something when imported (Alembic's env runs a migration).
_SKIP = ("authmesh.store.migrations", "authmesh.__main__")


def _error_classes() -> set[type[AuthmeshError]]:
    for info in pkgutil.walk_packages(authmesh.__path__, "authmesh."):
        if not info.name.startswith(_SKIP):
            importlib.import_module(info.name)
    found: set[type[AuthmeshError]] = set()
    todo = [AuthmeshError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("authmesh.") and not sub.__name__.startswith("_"):
                found.add(sub)
                todo.append(sub)
    return found


def test_the_root_docstring_draws_every_error_class() -> None:
    drawn = authmesh.errors.__doc__ or ""
    missing = sorted(
        c.__name__ for c in _error_classes() if not re.search(rf"── {c.__name__}\b", drawn)
    )
    assert missing == []


def test_every_error_class_lives_in_an_errors_module() -> None:
    misplaced = sorted(
        f"{c.__module__}.{c.__name__}"
        for c in _error_classes()
        if c.__module__.rsplit(".", 1)[-1] != "errors"
    )
    assert misplaced == []
