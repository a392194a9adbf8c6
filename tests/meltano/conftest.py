"""Fixtures for the Meltano end-to-end tests; helpers live in `meltano_project`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "postgres"))

from meltano_project import DEMO_SCALE, DEMO_SEED, MELTANO, PLUGINS_STAMP, ROOT, Project
from pg_server import Postgres, temporary_server


@pytest.fixture(scope="session")
def meltano_installed() -> Path:
    """The project's Meltano, with its plugins installed once (as `make install` does)."""
    if not MELTANO.exists():
        pytest.fail(f"{MELTANO} is missing: run `make test` (or `make install`) first")
    if not PLUGINS_STAMP.exists():
        subprocess.run(
            [str(MELTANO), "--log-level=warning", "install"], cwd=ROOT, check=True, timeout=600
        )
    return MELTANO


@pytest.fixture
def project(meltano_installed: Path, sandbox_factory: Any, tmp_path: Path) -> Project:
    """The Meltano project against a fresh sandbox at the demo's seed."""
    sandbox = sandbox_factory(seed=DEMO_SEED, scale=DEMO_SCALE)
    return Project(sandbox=sandbox, tmp=tmp_path)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server (pgserver's binaries, as tests/postgres uses), started
    only by the tests that share Meltano's system database or an ERP on it."""
    with temporary_server() as server:
        yield server
