"""Every method that overrides a base class method says so with `@override`.

A base (singer-sdk above all, see target-precoro/SDK.md and tap-precoro/SDK_SURFACE.md,
or the standard library's HTTP server in the sandbox) that renames or drops a method
then fails the type check instead of leaving ours silently uncalled.

Checked by importing every module of every product package (subpackages included):
classes defined inside functions are not seen, so mark those by hand.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import pytest

PACKAGES = ("precoro_client", "tap_precoro", "target_precoro", "precoro_sandbox")


def _functions(value: Any) -> list[Any]:
    """The object `@override` may have marked, and the function it wraps."""
    if isinstance(value, property):
        return [value.fget]
    inner = getattr(value, "__func__", None) or getattr(value, "fget", None)
    return [value, inner] if inner is not None else [value]


def _unmarked(package: str) -> list[str]:
    found = []
    root = importlib.import_module(package)
    names = [package, *(i.name for i in pkgutil.walk_packages(root.__path__, f"{package}."))]
    for name in names:
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != module.__name__:
                continue
            for attr, value in vars(cls).items():
                if attr.startswith("__") or inspect.isclass(value):
                    continue
                functions = _functions(value)
                if not any(callable(f) for f in functions):
                    continue
                if not any(attr in vars(base) for base in cls.__mro__[1:]):
                    continue
                if not any(getattr(f, "__override__", False) for f in functions):
                    found.append(f"{name}.{cls.__name__}.{attr}")
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_every_override_is_marked(package):
    assert _unmarked(package) == []
