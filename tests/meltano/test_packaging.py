"""The four packages are ready to publish: one version each, one license, tested Pythons."""

from __future__ import annotations

import filecmp
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

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


def test_build_makes_a_wheel_and_an_sdist_per_package(tmp_path: Path) -> None:
    """`python -m build` as the release workflow runs it (the wheel is built from the sdist)."""
    client = version_of("precoro-client")
    for package, module in PACKAGES.items():
        out = tmp_path / package
        subprocess.run(
            [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT / package)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        version = version_of(package)
        (wheel,) = out.glob(f"{module}-{version}-py3-none-any.whl")
        (sdist,) = out.glob(f"{module}-{version}.tar.gz")
        with zipfile.ZipFile(wheel) as zf:
            metadata = Parser().parsestr(zf.read(f"{module}-{version}.dist-info/METADATA").decode())
            assert f"{module}-{version}.dist-info/licenses/LICENSE" in zf.namelist()
        assert metadata["Version"] == version
        assert metadata["License-Expression"] == "Apache-2.0"
        assert metadata["Requires-Python"] == "<3.13,>=3.11"
        requires = metadata.get_all("Requires-Dist") or []
        if package != "precoro-client":
            assert f"precoro-client=={client}" in requires
        assert not [r for r in requires if "@" in r]  # no direct reference: PyPI accepts it
        with tarfile.open(sdist) as tf:
            assert tf.getmember(f"{module}-{version}/LICENSE").isfile()


def test_release_workflow_builds_every_package_on_a_tag() -> None:
    release = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    assert release[True]["push"]["tags"] == ["v*"]  # YAML reads the key `on` as True
    steps = release["jobs"]["build"]["steps"]
    build = next(s["run"] for s in steps if s.get("name") == "Build")
    for package in PACKAGES:
        assert package in build
    assert "## [Unreleased]" in (ROOT / "CHANGELOG.md").read_text()


def test_one_pip_url_of_git_urls_installs_a_plugin_with_its_client(tmp_path: Path) -> None:
    """The pip_url the README gives before a PyPI release: client and plugin by git URL."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    pip_url = " ".join(
        f"git+file://{ROOT}@{commit}#subdirectory={package}"
        for package in ("precoro-client", "tap-precoro")
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # As Meltano runs it: one pip install of the whole pip_url, into a fresh venv.
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *pip_url.split()],
        check=True,
        capture_output=True,
        timeout=300,
    )
    version = subprocess.run(
        [str(venv / "bin" / "tap-precoro"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert version.startswith(f"tap-precoro v{version_of('tap-precoro')}")
    check = "import precoro_client; print(precoro_client.__version__, precoro_client.__file__)"
    client = subprocess.run(
        [str(venv / "bin" / "python"), "-c", check], capture_output=True, text=True, check=True
    ).stdout.split()
    assert client[0] == version_of("precoro-client")
    assert str(venv) in client[1]  # installed into the venv, not editable from the checkout
