"""The four packages are ready to publish: one version each, one license, tested Pythons."""

from __future__ import annotations

import filecmp
import re
import tomllib

import yaml
from meltano_project import ROOT

PACKAGES = {
    "precoro-client": "precoro_client",
    "precoro-sandbox": "precoro_sandbox",
    "tap-precoro": "tap_precoro",
    "target-precoro": "target_precoro",
}


def version_of(package: str) -> str:
    text = (ROOT / package / PACKAGES[package] / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    assert match, f"{package} has no __version__"
    return match.group(1)


def test_one_version_source_and_the_client_pinned_to_its_release() -> None:
    client = version_of("precoro-client")
    for package, module in PACKAGES.items():
        project = tomllib.loads((ROOT / package / "pyproject.toml").read_text())
        assert "version" not in project["project"]
        assert project["project"]["dynamic"] == ["version"]
        assert project["tool"]["hatch"]["version"]["path"] == f"{module}/__init__.py"
        deps = project["project"]["dependencies"]
        client_deps = [d for d in deps if d.startswith("precoro-client")]
        if package != "precoro-client":
            # By name and pinned (PyPI rejects direct references); released together.
            assert client_deps == [f"precoro-client=={client}"]


def test_requires_python_states_exactly_the_versions_ci_tests() -> None:
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    tested = ci["jobs"]["test"]["strategy"]["matrix"]["python-version"]
    assert tested == ["3.11", "3.12"]
    for package in PACKAGES:
        project = tomllib.loads((ROOT / package / "pyproject.toml").read_text())["project"]
        assert project["requires-python"] == ">=3.11,<3.13"
        declared = [
            c.rsplit(" ", 1)[1]
            for c in project["classifiers"]
            if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
        ]
        assert declared == tested


def test_every_package_ships_the_license() -> None:
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    for package in PACKAGES:
        # A copy, not a symlink: an sdist keeps a symlink, which dangles once unpacked.
        path = ROOT / package / "LICENSE"
        assert not path.is_symlink()
        assert filecmp.cmp(path, ROOT / "LICENSE", shallow=False)
        project = tomllib.loads((ROOT / package / "pyproject.toml").read_text())["project"]
        assert project["license"] == "Apache-2.0"
        assert project["license-files"] == ["LICENSE"]
