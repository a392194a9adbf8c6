"""The lock files pin every dependency the repo declares, at a version it accepts.

`make install` installs with `-c requirements-lock.txt`; a dependency added to a
pyproject.toml or requirements file without `make lock` would install unpinned.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCAL = {"precoro-client", "precoro-sandbox", "tap-precoro", "target-precoro"}


def _requirement_lines(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def _pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for req in _requirement_lines(path):
        (spec,) = req.specifier
        assert spec.operator == "==", f"{path.name}: {req} is not a pin"
        pins[canonicalize_name(req.name)] = spec.version
    return pins


def _declared(requirements: str) -> list[Requirement]:
    found = _requirement_lines(ROOT / requirements)
    if requirements == "requirements-dev.txt":
        for package in sorted(LOCAL):
            project = tomllib.loads((ROOT / package / "pyproject.toml").read_text())["project"]
            found += [Requirement(r) for r in project.get("dependencies", [])]
    return [r for r in found if canonicalize_name(r.name) not in LOCAL]


@pytest.mark.parametrize(
    ("requirements", "lock"),
    [
        ("requirements-dev.txt", "requirements-lock.txt"),
        ("requirements-meltano.txt", "requirements-meltano-lock.txt"),
    ],
)
def test_every_declared_dependency_is_pinned_within_its_range(requirements, lock):
    pins = _pins(ROOT / lock)
    for req in _declared(requirements):
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} ({requirements}) is not in {lock}: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {name}=={pins[name]}, outside {req} ({requirements}): run `make lock`"
        )
