"""Every method that overrides a base class method says so with `@override`.

A base (singer-sdk above all, see target-precoro/SDK.md) that renames or drops a method
then fails the type check instead of leaving ours silently uncalled.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import pytest

PACKAGES = ("target_precoro", "precoro_client", "tap_precoro.webhooks")


def _functions(value: Any) -> list[Any]:
    """The object `@override` may have marked, and the function it wraps."""
    if isinstance(value, property):
        return [value.fget]
    inner = getattr(value, "__func__", None) or getattr(value, "fget", None)
    return [value, inner] if inner is not None else [value]


def _unmarked(package: str) -> list[str]:
    found = []
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(root.__path__, f"{package}."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != module.__name__:
                continue
            for name, value in vars(cls).items():
                if name.startswith("__") or inspect.isclass(value):
                    continue
                functions = _functions(value)
                if not any(callable(f) for f in functions):
                    continue
                if not any(name in vars(base) for base in cls.__mro__[1:]):
                    continue
                if not any(getattr(f, "__override__", False) for f in functions):
                    found.append(f"{info.name}.{cls.__name__}.{name}")
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_every_override_is_marked(package):
    assert _unmarked(package) == []
