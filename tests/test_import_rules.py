"""The import graph reads one way (issue 14), checked on the source, not by importing it.

- `precoro_client` imports nothing of the plugins or the sandbox;
- no module below a plugin class (streams, sinks and their helpers) imports it: the
  plugin hands them what they need (the tap's `RunContext`, the target's `Runtime`);
- the product packages import the sandbox only in their `testing` helper modules.

Every import counts, including those under `if TYPE_CHECKING:` and inside functions:
they are dependencies a reader has to follow all the same.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "precoro_client": ROOT / "precoro-client" / "precoro_client",
    "tap_precoro": ROOT / "tap-precoro" / "tap_precoro",
    "target_precoro": ROOT / "target-precoro" / "target_precoro",
    "precoro_sandbox": ROOT / "precoro-sandbox" / "precoro_sandbox",
}
PRODUCTS = ("precoro_client", "tap_precoro", "target_precoro")
PLUGIN_CLASS_MODULES = {"tap_precoro": "tap_precoro.tap", "target_precoro": "target_precoro.target"}
"""The module holding each plugin's class."""
MAY_IMPORT_PLUGIN = {"__main__", "testing"}
"""Module names (last part) that may import their plugin class: the entry point and
the test helpers, which run the plugin."""


def module_name(package: str, path: Path) -> str:
    """`tap_precoro.streams.base` for `.../tap_precoro/streams/base.py`."""
    parts = list(path.relative_to(PACKAGES[package]).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def modules(package: str) -> Iterator[tuple[str, Path]]:
    """(dotted name, path) of every module of a package."""
    for path in sorted(PACKAGES[package].rglob("*.py")):
        yield module_name(package, path), path


def imported(name: str, path: Path) -> set[str]:
    """Every module the source imports (for `from a import b`: `a` and `a.b`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def imports_any(names: set[str], packages: tuple[str, ...] | set[str]) -> set[str]:
    """The imported names that are (inside) one of `packages`."""
    return {n for n in names if any(n == p or n.startswith(p + ".") for p in packages)}


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import tap_precoro.tap\n"
        "from . import sibling\n"
        "from ..run_context import RunContext\n"
        "if TYPE_CHECKING:\n"
        "    from target_precoro.target import TargetPrecoro\n"
        "def late():\n"
        "    from precoro_sandbox import server\n"
    )
    path = tmp_path / "probe.py"
    path.write_text(source, encoding="utf-8")
    names = imported("tap_precoro.streams.probe", path)
    assert {"tap_precoro.tap", "tap_precoro.streams.sibling", "tap_precoro.run_context"} <= names
    assert "target_precoro.target" in names
    assert "precoro_sandbox.server" in names


@pytest.mark.parametrize("name_path", list(modules("precoro_client")), ids=lambda m: m[0])
def test_precoro_client_imports_no_plugin_and_no_sandbox(name_path: tuple[str, Path]) -> None:
    name, path = name_path
    bad = imports_any(imported(name, path), {"tap_precoro", "target_precoro", "precoro_sandbox"})
    assert not bad, f"{name} imports {sorted(bad)}"


def _below_plugin() -> Iterator[object]:
    for package, plugin in PLUGIN_CLASS_MODULES.items():
        for name, path in modules(package):
            if name == plugin or name.rpartition(".")[2] in MAY_IMPORT_PLUGIN:
                continue
            yield pytest.param(name, path, plugin, id=name)


@pytest.mark.parametrize(("name", "path", "plugin"), list(_below_plugin()))
def test_no_stream_or_sink_module_imports_its_plugin_class(
    name: str, path: Path, plugin: str
) -> None:
    bad = imports_any(imported(name, path), {plugin})
    assert not bad, f"{name} imports its plugin class module {plugin}"


def _product_modules() -> Iterator[object]:
    for package in PRODUCTS:
        for name, path in modules(package):
            if name.rpartition(".")[2] != "testing":
                yield pytest.param(name, path, id=name)


@pytest.mark.parametrize(("name", "path"), list(_product_modules()))
def test_products_import_the_sandbox_only_in_testing_helpers(name: str, path: Path) -> None:
    bad = imports_any(imported(name, path), {"precoro_sandbox"})
    assert not bad, f"{name} imports {sorted(bad)} (only a `testing` module may)"


def test_every_package_is_found() -> None:
    for package, path in PACKAGES.items():
        assert (path / "__init__.py").is_file(), package
        assert any(True for _ in modules(package))
