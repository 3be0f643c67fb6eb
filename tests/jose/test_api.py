"""The public surface of authmesh.jose: exactly ``__all__``, and every module declares one."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import authmesh.jose

MODULES = sorted(
    name
    for _, name, _ in pkgutil.iter_modules(authmesh.jose.__path__, "authmesh.jose.")
    if not name.rsplit(".", 1)[1].startswith("_")
)


def test_package_exports_exactly_all() -> None:
    namespace = vars(authmesh.jose)
    public = {
        name
        for name, value in namespace.items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public == set(authmesh.jose.__all__)
    assert len(authmesh.jose.__all__) == len(set(authmesh.jose.__all__))


@pytest.mark.parametrize("module_name", MODULES)
def test_every_module_declares_all_and_defines_it(module_name: str) -> None:
    module = importlib.import_module(module_name)
    names = module.__all__
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name!r}"
